"""Global importance and attribution shares, and two runs' attributions on one feature axis.

Shared by the drift and policy checks. Every statistic is computed per output slot of the
explanation's outputs axis (``values[..., s]``), over its explained rows:

- importance of feature ``j``: ``I_j = mean_i |phi_ij|``, the mean absolute attribution;
- share of feature ``j``: ``I_j / sum_l I_l``, its part of the total attribution (all zero when
  nothing is attributed).

:func:`align` puts the approved run's and the checked run's attributions on the union of their
features, matched by name (the checked run's order first, then the features only the approved
run has). A feature absent from one run contributes nothing there (zero attribution); two runs
whose features differ are compared only when the baseline allows it, otherwise refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.plugin import Baseline


def per_output(explanation: Explanation, name: str) -> np.ndarray:
    """A tabular attribution's values as ``(k, n, d)``: output slot, row, feature; a clear error
    for global measurements, effects and values over images or tokens."""
    if explanation.handoff.kind != "attribution":
        raise InputError(f"{name} reads attributions of explained rows; {explanation.method!r} "
                         f"gives {explanation.handoff.kind} values")
    if len(explanation.feature_shape) != 1 or not explanation.feature_names:
        raise InputError(f"{name} compares named tabular features; {explanation.method!r} "
                         f"values are shaped {explanation.feature_shape}")
    return np.moveaxis(np.asarray(explanation.values, dtype=np.float64), -1, 0)


def importance(values: np.ndarray) -> np.ndarray:
    """Mean absolute attribution per feature: ``(..., n, d)`` -> ``(..., d)``."""
    return np.asarray(np.abs(values).mean(axis=-2))


def shares(values: np.ndarray) -> np.ndarray:
    """Each feature's share of the total mean absolute attribution: ``(..., n, d)`` ->
    ``(..., d)``, summing to one (all zero when nothing is attributed)."""
    scores = importance(values)
    total = scores.sum(axis=-1, keepdims=True)
    return np.asarray(np.divide(scores, total, out=np.zeros_like(scores), where=total > 0))


def ranks(scores: np.ndarray) -> np.ndarray:
    """Rank of each feature by ``scores``, 1 for the largest, ties by feature order."""
    order = np.lexsort((np.arange(scores.size), -scores))
    out = np.empty(scores.size, dtype=np.int64)
    out[order] = np.arange(1, scores.size + 1)
    return out


def top_set(scores: np.ndarray, k: int) -> list[int]:
    """The ``k`` features of largest score with a non-zero score, largest first."""
    order = np.lexsort((np.arange(scores.size), -scores))
    return [int(j) for j in order[:k] if scores[j] > 0]


def percent(share: float) -> str:
    """A share as a rounded percentage, ``89%`` (``<1%`` for small non-zero shares)."""
    if 0 < share < 0.005:
        return "<1%"
    return f"{share * 100:.0f}%"


@dataclass(frozen=True)
class Aligned:
    """The approved run's (``before``) and the checked run's (``after``) attributions, each
    ``(k, n, d)``, over the same ``features`` and output slots ``outputs``."""

    features: tuple[str, ...]
    outputs: tuple[str, ...]
    before: np.ndarray
    after: np.ndarray
    new: tuple[str, ...]
    """Features the approved run did not have."""
    gone: tuple[str, ...]
    """Features the checked run does not have."""
    paired: bool
    """Whether both hold the same explained rows, in the same order."""

    def slot(self, per_slot: np.ndarray, worst: str) -> int:
        """The output slot whose value is worst (``worst``: ``"min"`` or ``"max"``); NaN is
        worst of all."""
        values = np.asarray(per_slot, dtype=np.float64)
        if np.isnan(values).any():
            return int(np.flatnonzero(np.isnan(values))[0])
        return int(np.argmin(values) if worst == "min" else np.argmax(values))

    def about(self, slot: int) -> str:
        """`` for output <name>`` when there are several output slots, else empty."""
        return f" for output {self.outputs[slot]}" if len(self.outputs) > 1 else ""


def align(explanation: Explanation, baseline: Baseline, name: str) -> Aligned:
    """Both runs' attributions on one feature axis (see the module docstring); the same rows
    only, in the same order, when :attr:`Baseline.rows` pairs them."""
    after, before = per_output(explanation, name), per_output(baseline.explanation, name)
    if explanation.output_names != baseline.explanation.output_names:
        raise InputError(f"{name}: the approved run explained outputs "
                         f"{', '.join(baseline.explanation.output_names)}, this run "
                         f"{', '.join(explanation.output_names)}; explain the same outputs")
    now, then = list(explanation.feature_names), list(baseline.explanation.feature_names)
    new = tuple(f for f in now if f not in then)
    gone = tuple(f for f in then if f not in now)
    if (new or gone) and not baseline.feature_changes:
        raise InputError(f"{name}: the features differ from the approved run's (new: "
                         f"{', '.join(new) or 'none'}; missing: {', '.join(gone) or 'none'}); "
                         "set baseline.feature_changes: compare to compare them")
    features = (*now, *gone)
    if baseline.rows is not None:
        before, after = before[:, baseline.rows[0]], after[:, baseline.rows[1]]
    return Aligned(features, explanation.output_names, _onto(before, then, features),
                   _onto(after, now, features), new, gone, baseline.rows is not None)


def _onto(values: np.ndarray, names: list[str], features: tuple[str, ...]) -> np.ndarray:
    """``values`` ``(k, n, len(names))`` placed on ``features`` (zeros where a name is absent)."""
    out = np.zeros((*values.shape[:2], len(features)))
    out[..., [features.index(f) for f in names]] = values
    return out
