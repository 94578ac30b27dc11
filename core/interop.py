"""An explanation as other libraries hold it: a ``shap.Explanation`` or a pandas DataFrame.

:func:`to_shap` gives shap's plotting functions (beeswarm, waterfall, bar, scatter, ...) what
they read: values, base values, the explained rows as ``data``, feature and output names, and
standard errors; :func:`to_frame` gives pandas a long table (one line per row, feature and
output) or a wide one (one line per explained row), indexed by the caller's row labels. The
reverse of :func:`to_shap` is :func:`xaudit.from_shap`. Neither shap nor pandas is imported
until these are called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import InputError
from .selection import Key, select

if TYPE_CHECKING:
    from .explanation import Explanation

FrameForm = Literal["long", "wide"]


def _import(module: str, purpose: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{purpose} needs the Python package {module!r}; install it with: "
                         f"pip install {module}") from None


def _names(exp: Explanation) -> list[str]:
    return list(exp.feature_names) or [f"x{i}" for i in range(int(np.prod(exp.feature_shape)))]


def _rows_of(exp: Explanation) -> np.ndarray | None:
    """The explained rows when they are over the values' features (not NaN placeholders)."""
    inputs = exp.inputs
    if tuple(inputs.shape[1:]) != exp.feature_shape:
        return None
    if inputs.dtype.kind == "f" and np.isnan(inputs).all():
        return None  # a global explanation: no row is a subject
    return inputs


def to_shap(explanation: Explanation, output: Key = None) -> Any:
    """A ``shap.Explanation`` of ``explanation`` (of one ``output`` slot when given).

    With one output slot (a single-output model, ``output=`` an index or name, or after
    :meth:`~xaudit.Explanation.output`) the values are ``(n, *feature_shape)`` and the base
    values ``(n,)``, shap's single-output layout that its plots take; with several, ``(n,
    *feature_shape, k)`` and ``(n, k)``. ``data`` holds the explained rows, ``error_std`` the
    standard errors of stochastic methods, ``instance_names`` the caller's row labels.
    """
    shap = _import("shap", "Explanation.to_shap()")
    exp = explanation if output is None else select(explanation, outputs=output)
    one = exp.values.shape[-1] == 1

    def slots(array: np.ndarray | None) -> np.ndarray | None:
        return None if array is None else (array[..., 0] if one else array)

    return shap.Explanation(
        values=slots(exp.values),
        base_values=slots(exp.base_values),
        data=_rows_of(exp),
        feature_names=_names(exp),
        output_names=exp.output_names[0] if one else list(exp.output_names),
        error_std=slots(exp.std_errors),
        instance_names=None if exp.row_index is None else list(exp.row_index.labels),
        compute_time=exp.wall_time_s,
    )


def to_frame(explanation: Explanation, form: FrameForm = "long", output: Key = None) -> Any:
    """A pandas DataFrame of ``explanation`` (of the ``output`` slots when given).

    ``long``: one line per (row, feature, output slot), indexed by the row's label (the
    caller's DataFrame index as it was, else the row's position, named ``row``), with columns
    ``feature``,
    ``output``, ``value``, ``input`` (the feature's value in the row, when the values are over
    the input's features) and ``std_error`` (stochastic methods). ``wide``: one line per
    explained row, one column per feature (``(output, feature)`` columns when there are several
    output slots). Features of image rows are flattened, in C order.
    """
    pd = _import("pandas", "Explanation.to_frame()")
    if form not in ("long", "wide"):
        raise InputError(f"to_frame form {form!r}: use 'long' or 'wide'")
    exp = explanation if output is None else select(explanation, outputs=output)
    n, k = exp.n_rows, exp.values.shape[-1]
    names, outputs = _names(exp), list(exp.output_names)
    d = len(names)
    index = (exp.row_index.to_pandas() if exp.row_index is not None
             else pd.RangeIndex(n, name="row"))
    flat = exp.values.reshape(n, d, k)
    if form == "wide":
        if k == 1:
            return pd.DataFrame(flat[..., 0], index=index,
                                columns=pd.Index(names, name="feature"))
        header = pd.MultiIndex.from_product([outputs, names], names=["output", "feature"])
        return pd.DataFrame(flat.transpose(0, 2, 1).reshape(n, k * d), index=index,
                            columns=header)
    columns: dict[str, Any] = {
        "feature": np.tile(np.repeat(np.asarray(names, dtype=object), k), n),
        "output": np.tile(np.asarray(outputs, dtype=object), n * d),
        "value": flat.ravel(),
    }
    rows = _rows_of(exp)
    if rows is not None:
        columns["input"] = np.repeat(rows.reshape(n, d), k, axis=1).ravel()
    if exp.std_errors is not None:
        columns["std_error"] = exp.std_errors.reshape(n, d, k).ravel()
    return pd.DataFrame(columns, index=index.repeat(d * k))
