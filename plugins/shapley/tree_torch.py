"""Path-dependent TreeSHAP in a dense, batched torch form (for a GPU; runs on CPU too).

Same values as :mod:`.tree_path` (Lundberg et al. 2020), laid out as GPUTreeShap (Mitchell
et al. 2022, "GPUTreeShap: massively parallel exact calculation of SHAP scores for tree
ensembles") does: every leaf's root path becomes a padded row of at most ``D`` edges, repeated
features merged into one slot. For a block of rows and leaves, ``o`` (does the row satisfy every
edge of the slot's feature) and ``z`` (the slot's cover fraction) give
``phi_slot = v (o - z) * sum_q w_q prod_{other slots} (z + (o - z) t_q)`` with Gauss-Legendre
nodes ``t_q`` (exact, the integrand being a polynomial of degree below ``D``); exclusive products
come from prefix and suffix cumulative products, and ``index_add_`` scatters slots onto features.
Work is tiled over leaves and rows so that a block's tensors stay under a memory budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaudit.batching import row_blocks
from xaudit.plugins.shapley.tree_flat import FlatEnsemble, LeafPaths, leaf_paths
from xaudit.plugins.shapley.tree_path import quadrature

LEAF_BLOCK = 4096
MEMORY_BUDGET = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}
"""Bytes a block's largest temporaries may take, per device type."""


def shap_values(flat: FlatEnsemble, X: np.ndarray, device: str = "cpu",
                paths: LeafPaths | None = None) -> np.ndarray:
    """Path-dependent SHAP values ``(n, d, K)`` of rows already cast by the ensemble."""
    import torch

    dev = torch.device(device)
    dtype = torch.float64
    paths = paths or leaf_paths(flat)
    tq_np, wq_np = quadrature(flat.max_depth)
    tq = torch.as_tensor(tq_np, dtype=dtype, device=dev)
    wq = torch.as_tensor(wq_np, dtype=dtype, device=dev)
    n, d, k = X.shape[0], flat.n_features, flat.n_outputs
    depth, n_q = flat.max_depth, tq.shape[0]
    budget = MEMORY_BUDGET["cuda" if dev.type == "cuda" else "cpu"]
    per_row = min(LEAF_BLOCK, max(1, paths.value.shape[0])) * depth * n_q * 8 * 4
    feature = torch.as_tensor(np.maximum(flat.feature, 0), device=dev)
    threshold = torch.as_tensor(flat.threshold, dtype=dtype, device=dev)
    missing_left = torch.as_tensor(flat.missing_left == 1, device=dev)
    out = torch.zeros((n, d * k), dtype=dtype, device=dev)
    blocks = [_to_device(paths, start, dev, dtype)
              for start in range(0, paths.value.shape[0], LEAF_BLOCK)]
    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float64), device=dev)
    for rows in row_blocks(n, budget, per_row):
        x = Xt[rows]
        xv = x[:, feature]
        go_left = torch.where(torch.isnan(xv), missing_left, xv <= threshold)
        acc = out[rows]
        for block in blocks:
            _block(go_left, block, tq, wq, d, k, acc)
    return np.asarray(out.reshape(n, d, k).cpu().numpy())


def _to_device(paths: LeafPaths, start: int, dev: Any, dtype: Any) -> dict[str, Any]:
    import torch

    stop = start + LEAF_BLOCK
    value = torch.as_tensor(paths.value[start:stop], dtype=dtype, device=dev)
    feature = torch.as_tensor(paths.slot_feature[start:stop], device=dev)
    n_out = value.shape[1]
    # flat (feature, output) target of each (leaf, slot, output)
    target = (feature[:, :, None] * n_out + torch.arange(n_out, device=dev)).reshape(-1)
    return {
        "edge_parent": torch.as_tensor(paths.edge_parent[start:stop], device=dev),
        "edge_left": torch.as_tensor(paths.edge_left[start:stop], device=dev),
        "edge_pad": torch.as_tensor(paths.edge_pad[start:stop], device=dev),
        "edge_slot": torch.as_tensor(paths.edge_slot[start:stop], device=dev),
        "slot_z": torch.as_tensor(paths.slot_z[start:stop], dtype=dtype, device=dev),
        "value": value,
        "target": target,
    }


def _block(go_left: Any, block: dict[str, Any], tq: Any, wq: Any, d: int, k: int,
           out: Any) -> None:
    import torch

    nr = go_left.shape[0]
    sat = (go_left[:, block["edge_parent"]] == block["edge_left"]) | block["edge_pad"]
    slot = block["edge_slot"].expand(nr, -1, -1)
    unsat = torch.zeros(sat.shape, dtype=tq.dtype, device=tq.device)
    unsat.scatter_add_(2, slot, (~sat).to(tq.dtype))
    o = (unsat == 0).to(tq.dtype)
    z = block["slot_z"].expand(nr, -1, -1)
    factor = z[..., None] + (o - z)[..., None] * tq  # (nr, L, D, Q)
    ones = torch.ones_like(factor[:, :, :1])
    prefix = torch.cumprod(torch.cat([ones, factor[:, :, :-1]], dim=2), dim=2)
    suffix = torch.flip(torch.cumprod(torch.flip(
        torch.cat([factor[:, :, 1:], ones], dim=2), dims=[2]), dim=2), dims=[2])
    integral = (prefix * suffix * wq).sum(dim=-1)  # (nr, L, D)
    contrib = (o - z) * integral
    per_output = contrib[..., None] * block["value"][:, None, :]  # (nr, L, D, K)
    out.index_add_(1, block["target"], per_output.reshape(nr, -1))
