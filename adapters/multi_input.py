"""Inputs of multi-input models (torch, ONNX): one array per named input, equal row counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xaudit.errors import InputError


def split_inputs(X: Any, input_names: Sequence[str], model_name: str) -> list[Any]:
    """``X`` as one part per input: a mapping by input name, a tuple/list of arrays, or, for a
    single-input model, the array itself."""
    names = list(input_names)
    if isinstance(X, Mapping):
        missing = [n for n in names if n not in X]
        if missing:
            raise InputError(f"model {model_name!r} inputs are {names}; missing {missing}")
        return [X[n] for n in names]
    is_group = isinstance(X, tuple) or (
        isinstance(X, list) and all(hasattr(part, "shape") for part in X))
    if len(names) == 1:
        return [X[0]] if is_group and len(X) == 1 else [X]
    if not is_group or len(X) != len(names):
        got = f"{len(X)} arrays" if is_group else f"a single {type(X).__name__}"
        raise InputError(f"model {model_name!r} takes {len(names)} inputs "
                         f"({', '.join(names)}): pass a tuple of arrays, one per input; "
                         f"got {got}")
    return list(X)


def check_row_counts(arrays: Sequence[np.ndarray], input_names: Sequence[str],
                     model_name: str) -> None:
    """Refuse inputs whose row counts differ, listing each input's count."""
    if len({a.shape[0] for a in arrays}) > 1:
        counts = ", ".join(f"{n}: {a.shape[0]}" for n, a in zip(input_names, arrays,
                                                               strict=True))
        raise InputError(f"model {model_name!r} inputs have different row counts ({counts})")
