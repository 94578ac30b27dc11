"""Explanations computed outside xaudit, brought in to be checked and reported.

:func:`from_shap` turns a ``shap.Explanation`` (from any shap explainer, or from
:meth:`xaudit.Explanation.to_shap`) into an :class:`~xaudit.Explanation` whose method is
``external.shap``. Checks that only read an explanation and call the model (completeness,
deletion and insertion, faithfulness correlation, agreement) run on it; checks that re-explain
perturbed inputs or a randomized model (stability, sensitivity, randomization) cannot, since
xaudit does not know how shap computed the values, and say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .data import default_feature_names
from .errors import InputError
from .explanation import Explanation
from .model import default_output_names
from .rowindex import RowIndex

EXTERNAL_SHAP = "external.shap"
"""The method name of explanations imported from shap."""


def from_shap(explanation: Any, *, X: Any = None, model_outputs: Sequence[int] | None = None,
              multi_output: bool | None = None, method: str = EXTERNAL_SHAP,
              additive: bool | None = None) -> Explanation:
    """An :class:`~xaudit.Explanation` of a ``shap.Explanation``.

    ``values`` ``(n, *feature_shape)`` (one output) or ``(n, *feature_shape, k)`` (several:
    when ``output_names`` lists ``k`` names or ``base_values`` is ``(n, k)``; force either
    reading with ``multi_output``); a single row's ``(d,)`` values become one row. ``X`` (by
    default the shap object's ``data``) gives the explained rows, which checks feed to the
    model; a DataFrame's columns name the features and its index labels the rows (shap keeps
    its ``data`` as an array, so pass the DataFrame as ``X`` to keep its index).
    ``model_outputs`` says which model output each slot holds (default ``0 .. k-1``), so a
    check compares each slot with the right output. ``additive`` (default: whether there are
    base values) says that values add up to the output minus the base value, as SHAP values
    do. ``error_std`` becomes ``std_errors``, ``instance_names`` the row labels.
    """
    values = np.asarray(getattr(explanation, "values", None), dtype=np.float64)
    base = getattr(explanation, "base_values", None)
    base_values = None if base is None else np.asarray(base, dtype=np.float64)
    rows = explanation.data if X is None else X
    if rows is None:
        raise InputError("the shap Explanation holds no data (the explained rows); build it "
                         "with data=X, or pass X=... to from_shap")
    labels = RowIndex.of(rows)
    columns = getattr(rows, "columns", None)
    rows = np.asarray(rows)
    if rows.ndim == 1:  # shap's exp[i]: one row without its row axis
        values, rows = values[None], rows[None]
        base_values = None if base_values is None or base_values.ndim == 0 else (
            base_values[None])
    n = values.shape[0]
    if not _several(explanation, values, base_values, multi_output):
        values = values[..., None]
    k = values.shape[-1]
    if rows.shape[0] != n or rows.shape[1:] != values.shape[1:-1]:
        raise InputError(f"the explained rows are shaped {rows.shape}, the values "
                         f"{values.shape[:-1]} (rows x features); give the rows that were "
                         "explained as data or X")
    if base_values is not None:
        base_values = np.broadcast_to(base_values.reshape(
            base_values.shape if base_values.ndim == 2 else (-1, 1)), (n, k)).copy()
    std = getattr(explanation, "error_std", None)
    names = explanation.feature_names if columns is None else list(map(str, columns))
    outputs = explanation.output_names
    output_names = ([outputs] if isinstance(outputs, str) else list(outputs)) if (
        outputs is not None) else list(default_output_names(k))
    if len(output_names) != k:
        raise InputError(f"the shap Explanation names {len(output_names)} output(s) for {k} "
                         "output slot(s); set multi_output to say which axis holds outputs")
    indices = np.arange(k) if model_outputs is None else np.asarray(model_outputs)
    if indices.shape != (k,):
        raise InputError(f"model_outputs gives {indices.size} output index(es) for {k} slot(s)")
    instance_names = getattr(explanation, "instance_names", None)
    if labels is None and instance_names is not None:
        labels = RowIndex.given([instance_names] if np.ndim(instance_names) == 0 else list(
            instance_names), n)
    return Explanation(
        method=method,
        values=values,
        base_values=base_values,
        feature_names=tuple(map(str, names)) if names is not None else default_feature_names(
            values.shape[1:-1]),
        output_names=tuple(map(str, output_names)),
        target_indices=np.tile(indices.astype(np.int64), (n, 1)),
        inputs=rows,
        std_errors=None if std is None else np.asarray(std, dtype=np.float64).reshape(
            values.shape),
        metadata={"imported_from": "shap.Explanation"},
        additive=base_values is not None if additive is None else additive,
        row_index=labels,
    )


def _several(explanation: Any, values: np.ndarray, base_values: np.ndarray | None,
             multi_output: bool | None) -> bool:
    """Whether the last axis of ``values`` (rows first) holds output slots."""
    if multi_output is not None:
        return multi_output
    if values.ndim < 3:
        return False
    names = explanation.output_names
    if names is not None and not isinstance(names, str):
        return bool(len(names) == values.shape[-1])
    return base_values is not None and base_values.shape == (values.shape[0], values.shape[-1])
