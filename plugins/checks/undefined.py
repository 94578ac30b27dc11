"""A check's gated value when its statistic is undefined on some rows: NaN, with the reason.

A statistic can be undefined for a row: the Pearson or rank correlation of a constant map, a
change relative to a zero map, a ranking of tied scores, a gain normalised by curves that do
not move, non-finite attributions (a re-explanation that failed). Averaging over the rows
where it is defined would let the others pass unseen, and replacing it by a number (0 for a
correlation) would pass gates it should fail. So a check collects, per row, why its statistic
is undefined (:class:`Undefined`), and :meth:`Undefined.outcome` reports

- ``value``: the mean (or maximum) over rows when every row is defined, else ``NaN``, which
  fails every gate whichever way it reads (:func:`xaudit.engine.gate_status`);
- ``values``: the per-row statistic, ``NaN`` on the undefined rows;
- ``details["undefined"]``: how many rows, which, and why; ``details["undefined_rows"]``; and
  the mean (or maximum) over the defined rows, for information only, as
  ``details["mean_over_defined_rows"]`` (``max_...`` for a maximum).

An explanation without rows is not measured at all: :func:`xaudit.check` reports NaN for it.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from xaudit.plugin import CheckOutcome


class Undefined:
    """The rows of ``n_rows`` on which a check's statistic is undefined, each with a reason."""

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows
        self.causes: list[tuple[str, np.ndarray]] = []

    def add(self, reason: str, where: np.ndarray) -> None:
        """Mark the rows where ``where`` holds (``(n,)``, or ``(n, ...)``: any entry of the
        row) as undefined because of ``reason``."""
        rows = np.asarray(np.asarray(where, dtype=bool).reshape(self.n_rows, -1).any(axis=1))
        if rows.any():
            self.causes.append((reason, rows))

    def not_finite(self, what: str, array: np.ndarray | None) -> None:
        """Mark the rows of ``array`` (``(n, ...)``) holding NaN or an infinity."""
        if array is not None:
            self.add(f"{what} are not finite", ~np.isfinite(array))

    def outcome(self, per_row: np.ndarray, details: dict[str, Any] | None = None,
                reduce: Literal["mean", "max"] = "mean") -> CheckOutcome:
        """The check's outcome from its per-row statistic (see the module docstring); a
        non-finite per-row value no reason covers is undefined too."""
        values = self.mask(per_row)
        undefined = np.isnan(values)
        causes = list(self.causes)
        rest = undefined & ~self._marked()
        if rest.any():
            causes.append(("the statistic is not finite", rest))
        defined = values[~undefined]
        summary = float(defined.max() if reduce == "max" else defined.mean()) \
            if defined.size else float("nan")
        out = dict(details or {})
        if undefined.any():
            reasons = "; ".join(f"{reason} ({_rows(np.flatnonzero(rows))})"
                                for reason, rows in causes)
            out["undefined"] = (f"undefined on {int(undefined.sum())} of {self.n_rows} rows: "
                                f"{reasons}")
            out["undefined_rows"] = np.flatnonzero(undefined).tolist()
            out[f"{reduce}_over_defined_rows"] = summary
            summary = float("nan")
        return CheckOutcome(summary, values, out)

    def mask(self, per_row: np.ndarray) -> np.ndarray:
        """``per_row`` with NaN on the undefined rows (as :meth:`outcome` reports them)."""
        values = np.array(per_row, dtype=np.float64).reshape(self.n_rows)
        values[self._marked() | ~np.isfinite(values)] = np.nan
        return values

    def _marked(self) -> np.ndarray:
        marked = np.zeros(self.n_rows, dtype=bool)
        for _, rows in self.causes:
            marked |= rows
        return marked


def constant(a: np.ndarray) -> np.ndarray:
    """Where ``a`` is the same all along its last axis (a map that ranks and correlates with
    nothing); ``False`` where it holds a NaN (that is :meth:`Undefined.not_finite`'s)."""
    a = np.asarray(a, dtype=np.float64)
    if a.shape[-1] == 0:
        return np.ones(a.shape[:-1], dtype=bool)
    return np.asarray(np.all(a == a[..., :1], axis=-1))


def _rows(rows: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(map(str, rows[:limit].tolist()))
    more = f" and {rows.size - limit} more" if rows.size > limit else ""
    return f"row{'s' if rows.size > 1 else ''} {shown}{more}"
