"""What a plugin hands back, checked where it hands it back.

An explainer's :class:`~xaudit.explanation.Attribution` and a check's
:class:`~xaudit.plugin.CheckOutcome` are checked by the engine the moment ``explain`` or ``run``
returns (:mod:`xaudit.engine`), so a malformed one is refused with a message naming the field,
and in a suite it becomes that one explainer's or check's crash while every other result is
still written (never an audit lost when ``results.json`` is saved). The rules:

* values shaped ``(rows, *feature_shape, targeted outputs)`` (a method that names its own
  units in ``metadata["feature_names"]``, or a global measurement, as
  :func:`~xaudit.engine.explain` describes);
* ``metadata`` and a check's ``details`` JSON-ready (what ``results.json`` stores: mappings
  with string keys, lists, strings, numbers, booleans, ``None``, numpy scalars and numeric or
  string arrays);
* ``extras`` numpy arrays that ``arrays.npz`` reads back without unpickling (no object dtype);
* a check's ``value`` a finite number or NaN, its ``values`` one finite-or-NaN number per
  explained row;
* a check leaves the explanation as it found it: it is handed a copy with read-only arrays
  (:func:`read_only`), and :func:`explanation_digest` is compared before and after.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .model import sha256_of_arrays

if TYPE_CHECKING:
    from .explanation import Attribution, Explanation
    from .plugin import CheckOutcome

STORABLE_KINDS = "biufU"
"""numpy dtype kinds ``results.json`` and ``arrays.npz`` store as they are."""


def json_problems(value: Any, where: str) -> list[str]:
    """Every part of ``value`` that ``results.json`` cannot store, by its path under ``where``."""
    if value is None or isinstance(value, str | bool | int | float | Path):
        return []
    if isinstance(value, np.generic | np.ndarray):
        kind = np.asarray(value).dtype.kind
        return [] if kind in STORABLE_KINDS else [
            f"{where} is a numpy {type(value).__name__} of dtype {np.asarray(value).dtype}, "
            "which results.json cannot store (use numbers, strings or booleans)"]
    if isinstance(value, Mapping):
        keys = [f"{where} has the key {key!r} ({type(key).__name__}); results.json keys are "
                "strings" for key in value if not isinstance(key, str)]
        return keys + [p for key, item in value.items() for p in
                       json_problems(item, f"{where}[{key!r}]")]
    if isinstance(value, list | tuple):
        return [p for i, item in enumerate(value) for p in json_problems(item, f"{where}[{i}]")]
    return [f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which "
            "results.json cannot store (use numbers, strings, lists or mappings)"]


def attribution_problems(attribution: Attribution, rows: int, feature_shape: tuple[int, ...],
                         slots: int) -> list[str]:
    """What is wrong with an explainer's result for ``rows`` rows shaped ``feature_shape`` and
    ``slots`` targeted outputs."""
    values = np.asarray(attribution.values)
    meta = attribution.metadata
    problems = json_problems(meta, "metadata") if isinstance(meta, Mapping) else [
        f"metadata is a {type(meta).__name__}, not a mapping"]
    if values.dtype.kind not in "biuf":
        problems.append(f"values have dtype {values.dtype}; expected numbers")
    global_ = attribution.handoff.kind == "global"
    named = isinstance(meta, Mapping) and bool(meta.get("feature_names"))
    if named and values.ndim >= 3:
        units = int(np.prod(values.shape[1:-1]))
        if units != len(meta["feature_names"]):
            problems.append(f"values shaped {values.shape} have {units} units, but "
                            f"metadata['feature_names'] names {len(meta['feature_names'])}")
        feature_shape = values.shape[1:-1]
    if global_ and isinstance(meta, Mapping) and meta.get("output_names"):
        slots = len(meta["output_names"])
    expected = ("rows", *feature_shape, slots) if global_ else (rows, *feature_shape, slots)
    if values.ndim != len(expected) or any(
            want != "rows" and got != want for got, want in zip(values.shape, expected,
                                                                 strict=False)):
        problems.append(f"values: expected {_shape(expected)}, got {values.shape} "
                        f"(rows, *feature shape {tuple(feature_shape)}, {slots} targeted "
                        "output(s))")
    n = values.shape[0] if values.ndim else 0
    for name, array in (("base_values", attribution.base_values),
                        ("std_errors", attribution.std_errors)):
        want = (n, values.shape[-1]) if name == "base_values" else values.shape
        if array is not None and np.shape(array) != want:
            problems.append(f"{name}: expected {_shape(want)}, got {np.shape(array)}")
    for name, array in attribution.extras.items():
        if not isinstance(array, np.ndarray) or array.dtype.kind not in STORABLE_KINDS + "c":
            problems.append(f"extras[{name!r}] is {_describe(array)}; extras are numpy arrays "
                            "of numbers or strings (arrays.npz is read without unpickling)")
    return problems


def outcome_problems(outcome: CheckOutcome, rows: int | None) -> list[str]:
    """What is wrong with a check's outcome on an explanation of ``rows`` rows (``None``: a
    model check, which explains no rows)."""
    return (value_problems(outcome.value) + values_problems(outcome.values, rows)
            + details_problems(outcome.details))


def value_problems(value: object) -> list[str]:
    """A check's gated value: a float, finite or NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return [f"value is {_describe(value)}; expected a float (NaN when undefined)"]
    if math.isinf(float(value)):
        return [f"value is {float(value)}; expected a finite float, or NaN when the measure is "
                "undefined"]
    return []


def values_problems(values: object, rows: int | None) -> list[str]:
    """A check's per-row values: ``None``, or one finite-or-NaN number per explained row (per
    measured row, of any count, when ``rows`` is ``None``)."""
    if values is None:
        return []
    array = np.asarray(values)
    if array.dtype.kind not in "biuf" or array.ndim != 1 or (
            rows is not None and array.shape != (rows,)):
        expected = "a vector" if rows is None else f"shape ({rows},)"
        return [f"values: expected one number per explained row, {expected}, got "
                f"{array.dtype} shaped {array.shape}"]
    if np.isinf(array).any():
        return [f"values hold {int(np.isinf(array).sum())} infinite number(s); expected "
                "finite numbers, or NaN where undefined"]
    return []


def details_problems(details: object) -> list[str]:
    """A check's details: a JSON-ready mapping (:func:`json_problems`)."""
    if not isinstance(details, Mapping):
        return [f"details is {_describe(details)}; expected a mapping"]
    return json_problems(details, "details")


def explanation_digest(explanation: Explanation) -> str:
    """A SHA-256 over every array of ``explanation``: equal before and after a check that
    left it untouched."""
    return sha256_of_arrays(*_arrays(explanation), extra=",".join(sorted(explanation.extras)))


def read_only(explanation: Explanation) -> Explanation:
    """A copy of ``explanation`` to hand a check: its values, base values, standard errors and
    extras are read-only views of the originals (numpy refuses a write in place with
    ``ValueError: assignment destination is read-only``); its inputs and target indices (which
    go back to models and explainers), metadata and params are copies, and a field rebound on
    it changes only it."""
    given = copy.copy(explanation)
    for name in ("values", "base_values", "std_errors"):
        array = getattr(given, name)
        if array is not None:
            setattr(given, name, _view(array))
    # rows and target indices go back to models and explainers (torch wants them writable)
    given.inputs, given.target_indices = (explanation.inputs.copy(),
                                          explanation.target_indices.copy())
    given.extras = {name: _view(np.asarray(a)) for name, a in explanation.extras.items()}
    given.metadata = copy.deepcopy(explanation.metadata)
    given.params = copy.deepcopy(explanation.params)
    return given


def _view(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def _arrays(explanation: Explanation) -> list[np.ndarray]:
    return [explanation.values, explanation.target_indices, explanation.inputs,
            *(a for a in (explanation.base_values, explanation.std_errors) if a is not None),
            *(explanation.extras[k] for k in sorted(explanation.extras))]


def _shape(expected: tuple[object, ...]) -> str:
    return "(" + ", ".join(str(d) for d in expected) + ("," if len(expected) == 1 else "") + ")"


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype}"
    return f"a {type(value).__name__} ({value!r:.60})"
