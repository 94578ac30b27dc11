"""Rows back into DataFrames for models fitted on DataFrames (names and categorical dtypes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def to_frame(X: np.ndarray, columns: Sequence[str],
             categories: Mapping[str, Sequence[Any]] | None = None) -> Any:
    """A pandas DataFrame of ``X`` with ``columns``.

    Columns named in ``categories`` get a categorical dtype with exactly those categories (so a
    model using ``categorical_features="from_dtype"`` sees the codes it was trained with); other
    object columns holding numbers become numeric; string columns stay strings.
    """
    import pandas as pd

    frame = pd.DataFrame(X, columns=list(columns))
    categories = categories or {}
    for name in frame.columns:
        if name in categories:
            frame[name] = pd.Categorical(frame[name], categories=list(categories[name]))
        elif frame[name].dtype == object:
            converted = pd.to_numeric(frame[name], errors="coerce")
            if converted.notna().sum() == frame[name].notna().sum():
                frame[name] = converted
    return frame
