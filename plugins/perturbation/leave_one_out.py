"""Leave one feature out: the output change when one feature at a time takes reference values.

For row ``x``, feature ``i`` and reference rows ``b``,
``phi_i(x) = f(x) - E_b[f(x with x_i := b_i)]``, with base value ``E_b[f(b)]``. ``ablation``
reports these values; ``occlusion`` reports them for its default one-feature window on tabular,
text and sequence rows. Registers nothing.
"""

from __future__ import annotations

import numpy as np

from xaudit.batching import predict_batched, row_blocks
from xaudit.model import Model
from xaudit.targets import TargetSelection


def leave_one_out(model: Model, X: np.ndarray, references: np.ndarray,
                  targets: TargetSelection, max_batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Values ``(n, *feature_shape, k)`` and base values ``(n, k)`` for the targeted outputs.

    ``references`` are ``(B, *feature_shape)`` rows; every perturbed row goes to the model in
    calls of at most ``max_batch`` rows (whole explained rows per block).
    """
    n, shape = X.shape[0], X.shape[1:]
    flat_x = X.reshape(n, -1)
    flat_refs = references.reshape(references.shape[0], -1)
    d, n_refs = flat_x.shape[1], flat_refs.shape[0]
    base = predict_batched(model, references, max_batch).mean(axis=0)
    full = predict_batched(model, X, max_batch)
    ablated_mean = np.empty((n, d, full.shape[1]))
    feature = np.arange(d)
    for rows in row_blocks(n, max_batch, d * n_refs):
        block = flat_x[rows]
        # perturbed[r, i, b] = block[r] with feature i replaced by reference b's value
        perturbed = np.repeat(block[:, None, None, :], d, axis=1).repeat(n_refs, axis=2)
        perturbed[:, feature, :, feature] = flat_refs.T[feature][:, None, :]
        preds = predict_batched(
            model, perturbed.reshape(-1, *shape), max_batch
        ).reshape(block.shape[0], d, n_refs, -1)
        ablated_mean[rows] = preds.mean(axis=2)
    deltas = full[:, None, :] - ablated_mean  # (n, d, m)
    index = targets.indices[:, None, :].repeat(d, axis=1)
    values = np.take_along_axis(deltas, index, axis=2).reshape(n, *shape, targets.n_slots)
    base_values = np.broadcast_to(base, full.shape)
    return values, targets.take(np.ascontiguousarray(base_values))
