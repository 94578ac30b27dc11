"""What a check takes from the explanation it checks: the explained rows, the values per
output slot, and the callable that re-explains other rows the same way."""

from __future__ import annotations

import numpy as np

from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.plugin import Check, Reexplain


def local_rows(explanation: Explanation, name: str) -> np.ndarray:
    """The explained rows as floats, or an InputError for a global or non-numeric explanation."""
    if explanation.handoff.kind == "global":
        raise InputError(f"{name} measures local attributions of explained rows; "
                         f"{explanation.method!r} gives a global explanation")
    try:
        rows = np.asarray(explanation.inputs, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} perturbs numeric rows; the rows {explanation.method!r} "
                         "explained are not numeric") from None
    if rows.size and np.isnan(rows).all():
        raise InputError(f"{name}: the explanation carries no input rows (all NaN)")
    return rows


def per_slot(values: np.ndarray) -> np.ndarray:
    """Values ``(n, *feature_shape, k)`` as ``(n, k, d)`` (features flattened last)."""
    n, k = values.shape[0], values.shape[-1]
    return np.moveaxis(values.reshape(n, -1, k), -1, 1)


def reexplainer(check: Check, name: str) -> Reexplain:
    """The re-explaining callable :func:`xaudit.check` gave ``check``, or a clear error."""
    context = check.context
    if context is None or context.reexplain is None:
        raise InputError(f"{name} re-explains inputs, so it needs the explanation's method "
                         "registered on the host running the check (run it through "
                         "xaudit.check or a suite). An explanation computed outside xaudit "
                         "(xaudit.from_shap, method 'external.shap') cannot be re-explained: "
                         "run this check on an explanation xaudit computed, or use checks "
                         "that only read the explanation (completeness, deletion, agreement)")
    return context.reexplain
