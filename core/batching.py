"""Bounded-memory model evaluation shared by explainers and checks."""

from __future__ import annotations

import numpy as np

from .model import Model


def predict_batched(model: Model, X: np.ndarray, max_batch: int) -> np.ndarray:
    """``model.predict`` over ``X`` in calls of at most ``max_batch`` rows, concatenated."""
    if X.shape[0] <= max_batch:
        return model.predict(X)
    parts = [model.predict(X[start:start + max_batch])
             for start in range(0, X.shape[0], max_batch)]
    return np.concatenate(parts, axis=0)
