"""The one result schema of every explainer.

``values`` is always ``(n, *feature_shape, n_outputs)``: the outputs axis is explicit even for a
single output, and ``base_values`` is ``(n, n_outputs)``. ``target_indices`` says which model
output each slot of the outputs axis holds for each row (see :mod:`xaudit.targets`).

Values, base values and standard errors are finite: an explanation holding NaN or an infinity
is refused when it is built (:class:`~xaudit.errors.AttributionError`, naming the method, the
count and the first rows and features), so no check or report ever reads one as a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .display import explanation_html
from .errors import AttributionError, InputError
from .handoff import Handoff, from_record, to_record
from .interop import FrameForm, to_frame, to_shap
from .rowindex import RowIndex
from .selection import Key, select, select_key
from .streaming import row_blocks


@dataclass
class Attribution:
    """What an explainer plugin computes; the host adds names, params, seed and timing.

    ``values``: ``(n, *feature_shape, k)`` for the ``k`` targeted outputs.
    ``base_values``: ``(n, k)`` when the method defines one (SHAP's expected value, IG's
    baseline output), else ``None``.
    ``std_errors``: per-value standard errors, same shape as ``values``, for stochastic methods.
    ``extras``: further named arrays (e.g. IG's per-row convergence delta).
    ``metadata``: JSON-ready facts about the computation (e.g. background summarisation).
    ``handoff``: what the report reads beyond the values (:class:`~xaudit.handoff.Handoff`:
    what the values are, model outputs, surrogate fit, curves, counterfactuals, tokens,
    caveats); the report never reads ``extras`` or ``metadata`` by key.
    """

    values: np.ndarray
    base_values: np.ndarray | None = None
    std_errors: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    handoff: Handoff = field(default_factory=Handoff)


@dataclass
class Explanation:
    """Attributions for ``n`` rows, with everything needed to interpret and reproduce them."""

    method: str
    values: np.ndarray
    base_values: np.ndarray | None
    feature_names: tuple[str, ...]
    output_names: tuple[str, ...]
    target_indices: np.ndarray
    inputs: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    wall_time_s: float = 0.0
    std_errors: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    additive: bool = False
    """True when the method claims local accuracy: values sum to output minus base value."""
    handoff: Handoff = field(default_factory=Handoff)
    """What the report reads beyond the values; checked against their shape on creation."""
    row_index: RowIndex | None = None
    """The caller's labels of the explained rows (a DataFrame's index), when it had some."""

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        n, k = self.values.shape[0], self.values.shape[-1]
        if self.values.ndim < 3:
            raise InputError(
                f"{self.method}: values must be (n, *feature_shape, n_outputs), "
                f"got shape {self.values.shape}"
            )
        if len(self.output_names) != k:
            raise InputError(
                f"{self.method}: {len(self.output_names)} output name(s) for {k} output slot(s)"
            )
        self.target_indices = np.asarray(self.target_indices, dtype=np.int64)
        if self.target_indices.shape != (n, k):
            raise InputError(
                f"{self.method}: target_indices shaped {self.target_indices.shape}, "
                f"expected {(n, k)}"
            )
        if self.base_values is not None:
            self.base_values = np.asarray(self.base_values, dtype=np.float64)
            if self.base_values.shape != (n, k):
                raise InputError(
                    f"{self.method}: base_values shaped {self.base_values.shape}, "
                    f"expected {(n, k)}"
                )
        if self.std_errors is not None:
            self.std_errors = np.asarray(self.std_errors, dtype=np.float64)
            if self.std_errors.shape != self.values.shape:
                raise InputError(
                    f"{self.method}: std_errors shaped {self.std_errors.shape}, "
                    f"expected {self.values.shape}"
                )
        n_features = math.prod(self.feature_shape)
        if self.feature_names and len(self.feature_names) != n_features:
            raise InputError(
                f"{self.method}: {len(self.feature_names)} feature name(s) for "
                f"{n_features} feature(s)"
            )
        if self.inputs.shape[0] != n:
            raise InputError(f"{self.method}: inputs have {self.inputs.shape[0]} rows, values {n}")
        self._require_finite("attribution values", self.values, self.feature_names)
        self._require_finite("base values", self.base_values, self.output_names)
        self._require_finite("standard errors", self.std_errors, self.feature_names)
        if self.row_index is not None and len(self.row_index) != n:
            raise InputError(f"{self.method}: row_index has {len(self.row_index)} label(s) "
                             f"for {n} row(s)")
        try:
            self.handoff.validate(n, k, self.feature_shape)
        except InputError as exc:
            raise InputError(f"{self.method}: handoff.{exc}") from None

    def _require_finite(self, what: str, array: np.ndarray | None,
                        names: tuple[str, ...]) -> None:
        """Refuse NaN or infinite entries of ``array`` (rows first, then features or outputs,
        named by ``names`` where they fit), naming the first rows and columns holding them."""
        if array is None or all(np.isfinite(array[rows]).all() for rows in row_blocks(array)):
            return  # by blocks: an array loaded out of core is never read whole
        bad = ~np.isfinite(array)
        n_nan, n_inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        per_row = bad.reshape(bad.shape[0], -1, bad.shape[-1]) if array.ndim > 2 else bad
        rows = np.flatnonzero(per_row.reshape(bad.shape[0], -1).any(axis=1))
        columns = per_row[rows[:5]].any(axis=-1) if array.ndim > 2 else per_row[rows[:5]]
        found = [int(c) for c in np.flatnonzero(columns.any(axis=0))]
        order = sorted(found, key=lambda c: int(np.argmax(columns[:, c])))  # first row first
        labels = [repr(names[c]) if c < len(names) else str(c) for c in order]
        kind = "output" if array.ndim == 2 else "feature"
        raise AttributionError(
            f"explainer {self.method!r} returned {n_nan + n_inf} of {array.size} {what} that "
            f"are not finite ({n_nan} NaN, {n_inf} infinite), in {len(rows)} of "
            f"{bad.shape[0]} rows: first {_listed('row', rows.tolist())}, "
            f"{_listed(kind, labels)}. An explanation must be finite; look at these rows' "
            "inputs (a NaN a model tolerates can still make a gradient NaN) or report it to "
            "the explainer's author")

    @property
    def n_rows(self) -> int:
        """Number of explained rows."""
        return int(self.values.shape[0])

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one row's attributions for one output."""
        return tuple(self.values.shape[1:-1])

    def per_input(self) -> dict[str, np.ndarray]:
        """Attributions of a multi-input model, one ``(n, *input_shape, k)`` array per input.

        Multi-input models are explained on packed rows (every input flattened, side by side;
        ``metadata["inputs"]`` records the layout). A single-input explanation gives
        ``{"input": values}``.
        """
        layout = self.metadata.get("inputs")
        if not layout:
            return {"input": self.values}
        n, k = self.n_rows, self.values.shape[-1]
        flat = self.values.reshape(n, -1, k)
        return {
            str(slot["name"]): flat[:, slot["offset"]:slot["offset"] + slot["size"]].reshape(
                n, *slot["shape"], k)
            for slot in layout
        }

    def __getitem__(self, key: Key) -> Explanation:
        """``exp[rows]``, ``exp[rows, features]``, ``exp[rows, features, outputs]``: the
        explanation of a selection (see :mod:`xaudit.selection`). Rows by position; features and
        outputs by position or name; each part an integer, a name, a slice, a boolean mask or a
        list (``exp[:, ["bmi", "s5"]]``). An integer keeps its axis."""
        return select_key(self, key)

    def select(self, *, rows: Key = None, features: Key = None,
               outputs: Key = None) -> Explanation:
        """The explanation of the selected ``rows``, ``features`` and ``outputs`` (``None``:
        all), as ``exp[rows, features, outputs]``."""
        return select(self, rows=rows, features=features, outputs=outputs)

    def output(self, which: int | str) -> Explanation:
        """The explanation of one output slot, by index or name (``exp.output("1")``)."""
        return select(self, outputs=which)

    def squeeze(self) -> np.ndarray:
        """The values ``(n, *feature_shape)`` of a one-output explanation.

        Raises :class:`~xaudit.errors.InputError` when there are several output slots: pick one
        first with :meth:`output`.
        """
        if self.values.shape[-1] != 1:
            raise InputError(f"{self.method}: squeeze() needs one output slot, this explanation "
                             f"has {self.values.shape[-1]} ({', '.join(self.output_names)}); "
                             "pick one with exp.output(name) first")
        return self.values[..., 0]

    def to_shap(self, output: Key = None) -> Any:
        """A ``shap.Explanation`` for shap's plots (see :func:`xaudit.interop.to_shap`)."""
        return to_shap(self, output)

    def to_frame(self, form: FrameForm = "long", output: Key = None) -> Any:
        """A pandas DataFrame, long or wide (see :func:`xaudit.interop.to_frame`)."""
        return to_frame(self, form, output)

    def _repr_html_(self) -> str:
        """Jupyter's rich display: method, shape, seed and the top features' importance."""
        return explanation_html(self)

    def to_record(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Split into a JSON-ready record and the named arrays (for ``arrays.npz``).

        Object-dtype inputs (mixed categorical rows) are stored as strings, since ``arrays.npz``
        is read back without unpickling.
        """
        inputs = self.inputs.astype(str) if self.inputs.dtype == object else self.inputs
        arrays: dict[str, np.ndarray] = {
            "values": self.values,
            "target_indices": self.target_indices,
            "inputs": inputs,
        }
        if self.base_values is not None:
            arrays["base_values"] = self.base_values
        if self.std_errors is not None:
            arrays["std_errors"] = self.std_errors
        for name, array in self.extras.items():
            arrays[f"extras.{name}"] = np.asarray(array)
        handoff, handoff_arrays = to_record(self.handoff)
        arrays.update(handoff_arrays)
        record = {
            "method": self.method,
            "feature_names": list(self.feature_names),
            "output_names": list(self.output_names),
            "params": self.params,
            "seed": self.seed,
            "wall_time_s": self.wall_time_s,
            "metadata": self.metadata,
            "additive": self.additive,
            "shape": list(self.values.shape),
            "handoff": handoff,
            "row_index": None if self.row_index is None else self.row_index.to_record(),
        }
        return record, arrays

    @classmethod
    def from_record(cls, record: dict[str, Any], arrays: dict[str, np.ndarray]) -> Explanation:
        """Inverse of :meth:`to_record`; a malformed hand-off raises
        :class:`~xaudit.errors.InputError` naming the field."""
        extras = {
            k.removeprefix("extras."): v for k, v in arrays.items() if k.startswith("extras.")
        }
        return cls(
            method=record["method"],
            values=arrays["values"],
            base_values=arrays.get("base_values"),
            feature_names=tuple(record["feature_names"]),
            output_names=tuple(record["output_names"]),
            target_indices=arrays["target_indices"],
            inputs=arrays["inputs"],
            params=record["params"],
            seed=record["seed"],
            wall_time_s=record["wall_time_s"],
            std_errors=arrays.get("std_errors"),
            extras=extras,
            metadata=record["metadata"],
            additive=record["additive"],
            handoff=from_record(Handoff, record["handoff"], arrays,
                                f"{record['method']}: handoff"),
            row_index=RowIndex.from_record(record["row_index"]) if record.get(
                "row_index") else None,
        )


def _listed(noun: str, items: list[Any], limit: int = 5) -> str:
    """``rows 0, 1, 2 and 7 more`` (the first ``limit`` of ``items``)."""
    shown = ", ".join(map(str, items[:limit]))
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{noun}{'s' if len(items) > 1 else ''} {shown}{more}"
