"""Path-dependent TreeSHAP in plain numpy, for workloads too small to pay for numba's start.

The same values as :mod:`.tree_path` (Lundberg et al. 2020) in the dense leaf-path layout of
GPUTreeShap (Mitchell et al. 2022) that :mod:`.tree_torch` uses on a GPU: every leaf's root path
is a padded row of at most ``D`` slots (repeated features merged), and for a row

``phi_slot = v (o - z) * sum_q w_q prod_{other slots} (z + (o - z) t_q)``

with ``o`` = does the row satisfy every edge of the slot's feature, ``z`` = the slot's merged
cover fraction and Gauss-Legendre nodes ``t_q`` (exact: the integrand is a polynomial of degree
below ``D``). Exclusive products come from prefix and suffix cumulative products.

Why it exists: importing numba and loading the compiled kernel from its disk cache costs about
half a second per process, more than explaining a few dozen rows of a small ensemble takes in
numpy. ``shap.tree``'s ``backend: auto`` therefore sends workloads under :data:`SMALL_WORK` here
(see :func:`work`), so a CI gate explaining 40 rows never imports numba.
"""

from __future__ import annotations

import numpy as np

from xaudit.batching import row_blocks
from xaudit.plugins.shapley.tree_flat import FlatEnsemble, LeafPaths
from xaudit.plugins.shapley.tree_path import quadrature

SMALL_WORK = 2**23
"""Largest ``rows x leaves x slots x quadrature nodes`` that ``backend: auto`` computes here
(0.2-0.8 s in numpy on one core, quiet to loaded; 40 rows of a 100-tree depth-4 ensemble are
about 5e5; numba's import and kernel cache load alone take about 0.5 s on a quiet core)."""
BLOCK_VALUES = 2**21
"""Values a block's ``(rows, leaves, slots, nodes or outputs)`` temporaries may hold (16 MiB
each)."""


def work(flat: FlatEnsemble, n_rows: int, n_leaves: int) -> int:
    """The size of the dense computation: ``rows x leaves x slots x quadrature nodes``."""
    return int(n_rows * n_leaves * max(1, flat.max_depth) * quadrature(flat.max_depth)[0].size)


def shap_values(flat: FlatEnsemble, X: np.ndarray, paths: LeafPaths) -> np.ndarray:
    """Path-dependent SHAP values ``(n, d, K)`` of rows already cast by the ensemble."""
    tq, wq = quadrature(flat.max_depth)
    n, d, k = X.shape[0], flat.n_features, flat.n_outputs
    n_leaves, depth = paths.edge_slot.shape
    out = np.zeros((n, d, k))
    if n_leaves == 0 or n == 0:
        return out
    feature = np.maximum(flat.feature, 0)
    per_leaf = depth * max(tq.shape[0], k)  # the widest temporary's values per (row, leaf)
    for leaves in row_blocks(n_leaves, BLOCK_VALUES, per_leaf):
        for rows in row_blocks(n, BLOCK_VALUES, (leaves.stop - leaves.start) * per_leaf):
            xv = X[rows][:, feature]
            go_left = np.where(np.isnan(xv), flat.missing_left == 1, xv <= flat.threshold)
            out[rows] += _block(go_left, paths, leaves, tq, wq, d)
    return out


def _block(go_left: np.ndarray, paths: LeafPaths, leaves: slice, tq: np.ndarray,
           wq: np.ndarray, d: int) -> np.ndarray:
    """The SHAP values ``(rows, d, K)`` that the leaves ``leaves`` contribute.

    Slot-major ``(D, rows, L)`` arrays, so every step below is one contiguous numpy operation.
    """
    edge_slot = paths.edge_slot[leaves]
    n_rows, (n_leaves, depth) = go_left.shape[0], edge_slot.shape
    sat = ((go_left[:, paths.edge_parent[leaves]] == paths.edge_left[leaves])
           | paths.edge_pad[leaves]).transpose(2, 0, 1)
    o = np.ones((depth, n_rows, n_leaves))
    leaf = np.arange(n_leaves)
    for step in range(depth):  # a slot's o: every edge of its feature is satisfied
        o[edge_slot[:, step], :, leaf] *= sat[step].T
    z = paths.slot_z[leaves].T[:, None, :]  # (D, 1, L)
    gap = o - z
    integral = np.zeros_like(o)
    for t, w in zip(tq, wq, strict=True):
        factor = z + gap * t
        prefix = np.ones_like(factor)  # prefix[j] = prod_{i < j} factor[i]
        for j in range(1, depth):
            np.multiply(prefix[j - 1], factor[j - 1], out=prefix[j])
        suffix = np.ones((n_rows, n_leaves))  # prod_{i > j} factor[i], from the last slot down
        for j in range(depth - 1, -1, -1):
            integral[j] += w * prefix[j] * suffix
            suffix = suffix * factor[j]
    contribution = gap * integral  # (D, rows, L)
    value = paths.value[leaves]
    k = value.shape[1]
    per_output = contribution[..., None] * value  # (D, rows, L, K)
    target = (np.arange(n_rows)[None, :, None, None] * (d * k)
              + paths.slot_feature[leaves].T[:, None, :, None] * k + np.arange(k))
    return np.bincount(np.broadcast_to(target, per_output.shape).ravel(),
                       weights=per_output.ravel(), minlength=n_rows * d * k).reshape(n_rows, d, k)
