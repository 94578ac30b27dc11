"""Row batching: the one rule that splits work into blocks of rows, and batched prediction.

Every explainer, check and adapter that bounds memory or call size splits rows with
:func:`row_blocks`, so a block holds the same rows wherever it is computed, and seeded work that
draws per block draws the same numbers.
"""

from __future__ import annotations

import numpy as np

from .model import Model


def row_blocks(n: int, max_rows: int, per_row: int = 1) -> list[slice]:
    """Consecutive slices covering ``range(n)`` in order, each of ``max(1, max_rows // per_row)``
    rows (the last one may be shorter).

    ``per_row`` is how many model rows one row becomes (samples, path points, perturbed
    copies), so a block's ``rows * per_row`` stays within ``max_rows``; a row is never split,
    so a row whose ``per_row`` alone exceeds ``max_rows`` is a block of its own. ``n = 0``
    gives no block.
    """
    size = max(1, int(max_rows) // max(1, int(per_row)))
    return [slice(start, min(n, start + size)) for start in range(0, n, size)]


def predict_batched(model: Model, X: np.ndarray, max_batch: int) -> np.ndarray:
    """``model.predict`` over ``X`` in calls of at most ``max_batch`` rows, concatenated."""
    if X.shape[0] <= max_batch:
        return model.predict(X)
    parts = [model.predict(X[rows]) for rows in row_blocks(X.shape[0], max_batch)]
    return np.concatenate(parts, axis=0)
