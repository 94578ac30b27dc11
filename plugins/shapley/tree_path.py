"""Path-dependent TreeSHAP values and interaction values as compiled (numba) CPU kernels.

Lundberg et al. 2020 ("From local explanations to global understanding with explainable AI for
trees", Nature Machine Intelligence) define the path-dependent value of a coalition ``S`` at a
leaf with value ``v`` as ``v * prod_{j in S} o_j * prod_{j not in S} z_j``, where for each
feature ``j`` on the leaf's path ``o_j`` says whether the row follows the path at ``j`` and
``z_j`` is the fraction of training cover that does (repeated features merged by multiplying).
Summing the Shapley weights gives (Linear TreeSHAP, Yu et al. 2022; GPUTreeShap, Mitchell et al.
2022) ``phi_i = v (o_i - z_i) * integral_0^1 prod_{j != i} (z_j + (o_j - z_j) t) dt``, a
polynomial of degree below the path length, integrated exactly by Gauss-Legendre quadrature with
``ceil(D / 2)`` nodes.

The kernel walks each tree once per row (O(nodes x quadrature nodes), no D^2 term): a forward
sweep carries the prefix product ``P_node(t)`` and the merged ``(z, o)`` of the edge's feature;
a backward sweep sums ``G_node(t) = sum_{leaves below} v P_leaf(t)``. The leaf's factor
``(o_f - z_f) / F_f(t)`` for a feature split several times on the path telescopes over its
edges, so the edge into node ``c`` splitting on ``f`` adds
``sum_q w_q (d_new(t_q) - d_old(t_q)) G_c(t_q)`` to ``phi_f`` with ``d = (o - z) / F``; the sum
over edges is the exact polynomial, so quadrature stays exact. Rows run in parallel (``prange``).

Interaction values (Lundberg et al. 2020, eq. for the Shapley interaction index): for ``i != j``
on a leaf's path, ``Phi_ij = v/2 (o_i - z_i)(o_j - z_j) integral prod_{k != i, j} F_k(t) dt``;
``Phi_ii = phi_i - sum_{j != i} Phi_ij``.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np

from xaudit.plugins.shapley.tree_flat import FlatEnsemble

ROW_BLOCK = 32
"""Rows a thread explains together, tree by tree (so each tree's tables stay in cache)."""


def quadrature(max_depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1], exact for degree ``< max_depth``."""
    n = max(1, math.ceil(max_depth / 2))
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return (nodes + 1.0) / 2.0, weights / 2.0


def edge_tables(flat: FlatEnsemble, tq: np.ndarray,
                wq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per node and state, the prefix-product ratio and the weighted ``d`` difference.

    The merged ``z`` of an edge's feature is static; only the merged ``o`` depends on the row,
    and before/after the edge it is one of three states: 0 = (1, 1), 1 = (1, 0), 2 = (0, 0).
    ``ratio[node, state, q] = F_new(t_q) / F_old(t_q)`` (0 when ``F_old`` vanishes) and
    ``dd[node, state, q] = w_q (d_new - d_old)(t_q)``, ``d = (o - z) / F`` (0 when ``F`` does).
    """
    zn = flat.zmerged[:, None]
    zo = np.where(flat.prev >= 0, flat.zmerged[np.maximum(flat.prev, 0)], 1.0)[:, None]
    ratio = np.zeros((zn.shape[0], 3, tq.shape[0]))
    dd = np.zeros_like(ratio)
    with np.errstate(divide="ignore", invalid="ignore"):
        for state, (oo, on) in enumerate(((1.0, 1.0), (1.0, 0.0), (0.0, 0.0))):
            fo = zo + (oo - zo) * tq[None, :]
            fn = zn + (on - zn) * tq[None, :]
            ratio[:, state] = np.where(fo != 0.0, fn / fo, 0.0)
            d_new = np.where(fn != 0.0, (on - zn) / fn, 0.0)
            d_old = np.where(fo != 0.0, (oo - zo) / fo, 0.0)
            dd[:, state] = (d_new - d_old) * wq[None, :]
    return ratio, dd


def _path_rows(X: Any, feature: Any, threshold: Any, missing_left: Any, is_leaf: Any,
               parent: Any, is_left: Any, prev: Any, later: Any, ratio: Any, dd: Any,
               value: Any, offsets: Any, cols: Any, col_offsets: Any, max_nodes: int,
               max_cols: int, out: Any) -> None:  # pragma: no cover - compiled by numba
    n_rows = X.shape[0]
    n_q = ratio.shape[2]
    n_trees = offsets.shape[0] - 1
    n_blocks = (n_rows + ROW_BLOCK - 1) // ROW_BLOCK
    for block in _prange(n_blocks):
        P = np.empty((max_nodes, n_q))
        G = np.empty((max_nodes, max_cols, n_q))
        om = np.empty(max_nodes, dtype=np.uint8)
        st = np.empty(max_nodes, dtype=np.uint8)
        goleft = np.empty(max_nodes, dtype=np.uint8)
        r_end = min(n_rows, (block + 1) * ROW_BLOCK)
        for t in range(n_trees):  # trees outside rows: a tree's tables stay in cache
            s = offsets[t]
            e = offsets[t + 1]
            c0 = col_offsets[t]
            nc = col_offsets[t + 1] - c0
            if nc == 0:
                continue
            for r in range(block * ROW_BLOCK, r_end):
                x = X[r]
                phi = out[r]
                for p in range(s, e):
                    i = p - s
                    if p == s:
                        for q in range(n_q):
                            P[0, q] = 1.0
                        om[0] = 1
                    else:
                        par = parent[p]
                        if par < 0:
                            continue
                        pv = prev[p]
                        oo = om[pv - s] if pv >= 0 else 1
                        if oo == 0:
                            state = 2
                        elif goleft[par - s] == is_left[p]:
                            state = 0
                        else:
                            state = 1
                        st[i] = state
                        om[i] = 1 if state == 0 else 0
                        ip = par - s
                        for q in range(n_q):
                            P[i, q] = P[ip, q] * ratio[p, state, q]
                    if is_leaf[p] == 0:
                        xv = x[feature[p]]
                        if np.isnan(xv):
                            goleft[i] = missing_left[p]
                        else:
                            goleft[i] = 1 if xv <= threshold[p] else 0
                # backward: G[node] = sum over leaves below of v * P_leaf; children come after
                # their parent, and the later child of each pair is seen first (it assigns)
                for p in range(e - 1, s, -1):
                    par = parent[p]
                    if par < 0:
                        continue
                    i = p - s
                    ip = par - s
                    first = later[p] == 1
                    state = st[i]
                    if nc == 1:  # one output column (regression, boosting): no inner loop
                        col = cols[c0]
                        if is_leaf[p] == 1:
                            v = value[p, col]
                            for q in range(n_q):
                                G[i, 0, q] = P[i, q] * v
                        acc = 0.0
                        for q in range(n_q):
                            g = G[i, 0, q]
                            if state != 2:
                                acc += dd[p, state, q] * g
                            if first:
                                G[ip, 0, q] = g
                            else:
                                G[ip, 0, q] += g
                        if state != 2:
                            phi[feature[par], col] += acc
                        continue
                    if is_leaf[p] == 1:
                        for kk in range(nc):
                            v = value[p, cols[c0 + kk]]
                            for q in range(n_q):
                                G[i, kk, q] = P[i, q] * v
                    if state == 2:  # the feature already failed above: d is unchanged
                        for kk in range(nc):
                            for q in range(n_q):
                                if first:
                                    G[ip, kk, q] = G[i, kk, q]
                                else:
                                    G[ip, kk, q] += G[i, kk, q]
                        continue
                    f = feature[par]
                    for kk in range(nc):
                        acc = 0.0
                        for q in range(n_q):
                            g = G[i, kk, q]
                            acc += dd[p, state, q] * g
                            if first:
                                G[ip, kk, q] = g
                            else:
                                G[ip, kk, q] += g
                        phi[f, cols[c0 + kk]] += acc


def _interaction_rows(X: Any, feature: Any, threshold: Any, missing_left: Any, is_leaf: Any,
                      parent: Any, is_left: Any, zedge: Any, prev: Any, value: Any,
                      offsets: Any, cols: Any, col_offsets: Any, tq: Any, wq: Any,
                      max_nodes: int, max_depth: int,
                      out: Any) -> None:  # pragma: no cover - compiled by numba
    n_rows = X.shape[0]
    n_q = tq.shape[0]
    n_trees = offsets.shape[0] - 1
    n_features = X.shape[1]
    for r in _prange(n_rows):
        x = X[r]
        inter = out[r]
        zm = np.empty(max_nodes)
        om = np.empty(max_nodes)
        goleft = np.empty(max_nodes, dtype=np.uint8)
        seen = np.zeros(n_features, dtype=np.uint8)
        uf = np.empty(max_depth + 1, dtype=np.int64)
        uz = np.empty(max_depth + 1)
        uo = np.empty(max_depth + 1)
        F = np.empty((max_depth + 1, n_q))
        nzprod = np.empty(n_q)
        zeros = np.empty(n_q, dtype=np.int64)
        for t in range(n_trees):
            s = offsets[t]
            e = offsets[t + 1]
            c0 = col_offsets[t]
            nc = col_offsets[t + 1] - c0
            if nc == 0:
                continue
            for p in range(s, e):
                i = p - s
                if p == s:
                    zm[0] = 1.0
                    om[0] = 1.0
                else:
                    par = parent[p]
                    if par < 0:
                        continue
                    o = 1.0 if goleft[par - s] == is_left[p] else 0.0
                    pv = prev[p]
                    zo = 1.0
                    oo = 1.0
                    if pv >= 0:
                        zo = zm[pv - s]
                        oo = om[pv - s]
                    zm[i] = zo * zedge[p]
                    om[i] = oo * o
                if is_leaf[p] == 0:
                    xv = x[feature[p]]
                    if np.isnan(xv):
                        goleft[i] = missing_left[p]
                    else:
                        goleft[i] = 1 if xv <= threshold[p] else 0
                    continue
                if p != s and parent[p] < 0:
                    continue
                # the unique features of this leaf's path, deepest (merged) occurrence first
                m = 0
                node = p
                while node != s:
                    par = parent[node]
                    f = feature[par]
                    if seen[f] == 0:
                        seen[f] = 1
                        uf[m] = f
                        uz[m] = zm[node - s]
                        uo[m] = om[node - s]
                        m += 1
                    node = par
                for a in range(m):
                    seen[uf[a]] = 0
                if m < 2:
                    continue
                for q in range(n_q):
                    nzprod[q] = 1.0
                    zeros[q] = 0
                    for a in range(m):
                        fa = uz[a] + (uo[a] - uz[a]) * tq[q]
                        F[a, q] = fa
                        if fa == 0.0:
                            zeros[q] += 1
                        else:
                            nzprod[q] *= fa
                for a in range(m):
                    da = uo[a] - uz[a]
                    if da == 0.0:
                        continue
                    for b in range(a + 1, m):
                        db = uo[b] - uz[b]
                        if db == 0.0:
                            continue
                        integral = 0.0
                        for q in range(n_q):
                            za = 1 if F[a, q] == 0.0 else 0
                            zb = 1 if F[b, q] == 0.0 else 0
                            if zeros[q] - za - zb > 0:
                                continue
                            rest = nzprod[q]
                            if za == 0:
                                rest /= F[a, q]
                            if zb == 0:
                                rest /= F[b, q]
                            integral += wq[q] * rest
                        scale = 0.5 * da * db * integral
                        fa_ = uf[a]
                        fb_ = uf[b]
                        for kk in range(nc):
                            k = cols[c0 + kk]
                            contribution = scale * value[p, k]
                            inter[fa_, fb_, k] += contribution
                            inter[fb_, fa_, k] += contribution


def _prange(n: int) -> range:  # pragma: no cover - replaced by numba.prange when compiled
    return range(n)


@cache
def _compiled() -> tuple[Any, Any]:
    """The kernels compiled with numba (once per process; cached on disk)."""
    import numba

    globals()["_prange"] = numba.prange
    def jit(kernel: Any) -> Any:
        return numba.njit(parallel=True, cache=True, nogil=True, fastmath=False)(kernel)

    return jit(_path_rows), jit(_interaction_rows)


def shap_values(flat: FlatEnsemble, X: np.ndarray,
                tables: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Path-dependent SHAP values of the raw output, ``(n, d, K)`` (rows already cast).

    ``tables`` are :func:`edge_tables` at :func:`quadrature` nodes (computed when not given;
    pass them to reuse them across chunks of rows).
    """
    path_rows, _ = _compiled()
    if tables is None:
        tables = edge_tables(flat, *quadrature(flat.max_depth))
    ratio, dd = tables
    out = np.zeros((X.shape[0], flat.n_features, flat.n_outputs))
    path_rows(np.ascontiguousarray(X, dtype=np.float64), flat.feature, flat.threshold,
              flat.missing_left, flat.is_leaf, flat.parent, flat.is_left, flat.prev,
              _later_child(flat), ratio, dd, flat.value, flat.offsets, flat.cols,
              flat.col_offsets, flat.max_nodes, flat.max_cols, out)
    return out


def _later_child(flat: FlatEnsemble) -> np.ndarray:
    """1 at the child with the larger node id of each split (the backward sweep's first)."""
    later = np.zeros(flat.parent.shape[0], dtype=np.uint8)
    internal = np.flatnonzero(flat.is_leaf == 0)
    later[np.maximum(flat.left[internal], flat.right[internal])] = 1
    return later


def interaction_values(flat: FlatEnsemble, X: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """SHAP interaction values ``(n, d, d, K)``; ``phi`` are the rows' SHAP values."""
    _, interaction_rows = _compiled()
    tq, wq = quadrature(flat.max_depth)
    d = flat.n_features
    out = np.zeros((X.shape[0], d, d, flat.n_outputs))
    interaction_rows(np.ascontiguousarray(X, dtype=np.float64), flat.feature, flat.threshold,
                     flat.missing_left, flat.is_leaf, flat.parent, flat.is_left, flat.zedge,
                     flat.prev, flat.value, flat.offsets, flat.cols, flat.col_offsets, tq, wq,
                     flat.max_nodes, flat.max_depth, out)
    diagonal = phi - out.sum(axis=2)
    index = np.arange(d)
    out[:, index, index, :] = diagonal
    return out
