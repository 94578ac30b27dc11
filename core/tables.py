"""Rows handed over as tables (pandas DataFrames), read as numpy arrays with NaN for missing.

``np.asarray`` of a DataFrame with pandas' nullable columns (``Float64``, ``Int64``,
``boolean``) holding ``pd.NA`` gives an object array whose ``pd.NA`` no float conversion
accepts (``TypeError: float() argument must be ... not 'NAType'``). :func:`as_rows` is the one
place rows from a caller become an array (``xaudit.explain`` and ``xaudit.check``, a dataset
built from arrays, every adapted model's ``predict``): numeric tables become float64 with NaN
where pandas holds a missing value, the NaN that tree models route as missing (TreeSHAP
explains NaN rows, as shap does). pandas is never imported: a table is recognised by its
``dtypes`` and ``to_numpy``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_rows(X: Any) -> np.ndarray:
    """``X`` as a numpy array; a table with pandas extension dtypes (nullable numbers,
    categories, strings) has its missing values (``pd.NA``) as NaN: float64 when every column
    is numeric or boolean, object otherwise. Plain numpy-typed tables and arrays are converted
    as ``np.asarray`` does."""
    if isinstance(X, np.ndarray):
        return X
    if not hasattr(X, "to_numpy"):
        return np.asarray(X)
    if getattr(X, "ndim", None) == 1:  # a Series: one dtype (its ``dtypes`` is that dtype)
        kinds = [getattr(X, "dtype", None)]
    elif getattr(X, "dtypes", None) is not None:
        kinds = list(X.dtypes)
    else:
        return np.asarray(X)
    if all(isinstance(kind, np.dtype) for kind in kinds):
        return np.asarray(X)
    numeric = all(getattr(kind, "kind", "O") in "fiub" for kind in kinds)
    return np.asarray(X.to_numpy(dtype=np.float64 if numeric else object, na_value=np.nan))
