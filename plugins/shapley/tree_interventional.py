"""Interventional TreeSHAP as a compiled (numba) CPU kernel.

Lundberg et al. 2020 ("From local explanations to global understanding with explainable AI for
trees", Nature Machine Intelligence, Methods: "Independent Tree SHAP") average, over background
rows ``b``, the Shapley values of the single-reference game ``v(S) = f(x_S, b_{not S})``. In one
tree only the features on which ``x`` and ``b`` split differently matter: walking the tree, a node
where both go the same way is followed once; where they part on a feature not yet decided, the
walk branches into "feature from x" and "feature from b", and later splits on a decided feature
follow that choice. A leaf reached with ``a`` features taken from ``x`` and ``c`` from ``b`` is the
output of exactly the coalitions that contain the first set and avoid the second, so each
``x``-feature gets ``v (a-1)! c! / (a+c)!`` and each ``b``-feature ``-v a! (c-1)! / (a+c)!``.

That pair walk (:func:`_pair_rows`, rows in parallel) costs a tree walk per (row, background
row). The leaf view gives a cheaper form (:func:`_table_trees`): for a leaf whose path holds
``m`` distinct features, let ``M`` be the features whose edges ``x`` all follows and ``Z_b`` those
where ``b`` fails one. The leaf is reachable from the pair iff ``Z_b`` lies inside ``M``; then
``a = |Z_b|`` features come from ``x`` and the ``c = m - |M|`` others from ``b``. So a tree's
contribution needs, per leaf, only the counts ``S[k, M] = #{b : Z_b in M, |Z_b| = k}`` (a ranked
zeta transform of the background's ``Z`` histogram, ``2^m (m + 1)`` entries): feature ``i`` in
``M`` gets ``v/B sum_k pos[k, c] (S[k, M] - S[k, M - i])``, one outside ``M`` gets
``-v/B sum_k neg[k, c] S[k, M]``. Each row then reads one table row per leaf. Trees are split
among threads; :func:`plan` picks tables or pairs per tree by estimated cost (tables need at
most :data:`MAX_TABLE_BITS` distinct features per path).

With an output transform ``g`` and ``model_output="probability"``, each pair's values (summed
over trees) are rescaled by ``(g(m_x) - g(m_b)) / (m_x - m_b)`` on its raw margins ``m``, as
the reference implementation (shap) defines it, so the pair walk is used on every tree; values
then sum to ``g(m_x) - mean_b g(m_b)`` exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from xaudit.plugins.shapley.tree_flat import MAX_TABLE_BITS, FlatEnsemble, LeafTables, leaf_tables


def shapley_weights(max_depth: int) -> tuple[np.ndarray, np.ndarray]:
    """``pos[a, c] = (a-1)! c! / (a+c)!`` and ``neg[a, c] = a! (c-1)! / (a+c)!``."""
    size = max_depth + 2
    pos = np.zeros((size, size))
    neg = np.zeros((size, size))
    for a in range(size):
        for c in range(size):
            if a + c == 0:
                continue
            total = math.factorial(a + c)
            if a > 0:
                pos[a, c] = math.factorial(a - 1) * math.factorial(c) / total
            if c > 0:
                neg[a, c] = math.factorial(a) * math.factorial(c - 1) / total
    return pos, neg


def _directions(X: Any, feature: Any, threshold: Any, missing_left: Any, is_leaf: Any,
                out: Any) -> None:  # pragma: no cover - compiled by numba
    for r in _prange(X.shape[0]):
        for node in range(feature.shape[0]):
            if is_leaf[node] == 0:
                xv = X[r, feature[node]]
                if np.isnan(xv):
                    out[r, node] = missing_left[node]
                else:
                    out[r, node] = 1 if xv <= threshold[node] else 0


def _pair_rows(X: Any, threshold: Any, missing_left: Any, bdir: Any, feature: Any, left: Any,
               right: Any, is_leaf: Any,
               value: Any, offsets: Any, cols: Any, col_offsets: Any, pos: Any, neg: Any,
               scale: Any, use_scale: bool, max_depth: int, skip: Any,
               out: Any) -> None:  # pragma: no cover - compiled by numba
    n_rows = X.shape[0]
    n_bg = bdir.shape[0]
    n_nodes = feature.shape[0]
    n_trees = offsets.shape[0] - 1
    n_features = out.shape[1]
    n_out = out.shape[2]
    stack_size = max_depth + 4
    for r in _prange(n_rows):
        phi = out[r]
        xd = np.zeros(n_nodes, dtype=np.uint8)  # the row's direction at every split
        for node in range(n_nodes):
            if is_leaf[node] == 0:
                xv = X[r, feature[node]]
                if np.isnan(xv):
                    xd[node] = missing_left[node]
                else:
                    xd[node] = 1 if xv <= threshold[node] else 0
        state = np.zeros(n_features, dtype=np.int8)
        st_node = np.empty(stack_size, dtype=np.int64)
        st_nd = np.empty(stack_size, dtype=np.int64)
        st_f = np.empty(stack_size, dtype=np.int64)
        st_s = np.empty(stack_size, dtype=np.int8)
        dec_f = np.empty(max_depth + 1, dtype=np.int64)
        dec_s = np.empty(max_depth + 1, dtype=np.int8)
        tmp = np.zeros((n_features, n_out))
        for j in range(n_bg):
            bd = bdir[j]
            acc = tmp if use_scale else phi
            for t in range(n_trees):
                c0 = col_offsets[t]
                nc = col_offsets[t + 1] - c0
                if nc == 0 or skip[t] == 1:
                    continue
                top = 1
                st_node[0] = offsets[t]
                st_nd[0] = 0
                st_f[0] = -1
                st_s[0] = 0
                nd = 0
                na = 0
                nb = 0
                while top > 0:
                    top -= 1
                    node = st_node[top]
                    keep = st_nd[top]
                    while nd > keep:
                        nd -= 1
                        state[dec_f[nd]] = 0
                        if dec_s[nd] == 1:
                            na -= 1
                        else:
                            nb -= 1
                    f = st_f[top]
                    if f >= 0:  # the branch taking feature f from the background row
                        dec_f[nd] = f
                        dec_s[nd] = 2
                        nd += 1
                        state[f] = 2
                        nb += 1
                    while is_leaf[node] == 0:  # follow one walk, pushing the b-side branches
                        f = feature[node]
                        xl = xd[node]
                        s = state[f]
                        if s == 1:
                            node = left[node] if xl == 1 else right[node]
                            continue
                        bl = bd[node]
                        if s == 2:
                            node = left[node] if bl == 1 else right[node]
                        elif xl == bl:
                            node = left[node] if xl == 1 else right[node]
                        else:
                            st_node[top] = left[node] if bl == 1 else right[node]
                            st_nd[top] = nd
                            st_f[top] = f
                            top += 1
                            dec_f[nd] = f
                            dec_s[nd] = 1
                            nd += 1
                            state[f] = 1
                            na += 1
                            node = left[node] if xl == 1 else right[node]
                    if nd == 0:
                        continue
                    wp = pos[na, nb]
                    wn = neg[na, nb]
                    for kk in range(nc):
                        k = cols[c0 + kk]
                        v = value[node, k]
                        vp = v * wp
                        vn = v * wn
                        for a in range(nd):
                            if dec_s[a] == 1:
                                acc[dec_f[a], k] += vp
                            else:
                                acc[dec_f[a], k] -= vn
                while nd > 0:
                    nd -= 1
                    state[dec_f[nd]] = 0
            if use_scale:
                for i in range(n_features):
                    for k in range(n_out):
                        phi[i, k] += tmp[i, k] * scale[r, j, k]
                        tmp[i, k] = 0.0
        for i in range(n_features):
            for k in range(n_out):
                phi[i, k] /= n_bg


def _table_trees(X: Any, feature: Any, threshold: Any, missing_left: Any, bdir: Any,
                 edge_parent: Any, edge_left: Any, edge_bit: Any,
                 leaf_m: Any, leaf_node: Any, slot_feature: Any, leaf_offsets: Any, trees: Any,
                 value: Any, cols: Any, col_offsets: Any, pos: Any, neg: Any, popcount: Any,
                 max_m: int, out: Any) -> None:  # pragma: no cover - compiled by numba
    n_rows = X.shape[0]
    n_bg = bdir.shape[0]
    n_groups = out.shape[0]
    for g in _prange(n_groups):
        phi = out[g]
        S = np.empty((max_m + 1) << max_m)
        T = np.empty(max(1, max_m) << max_m)
        for ti in range(g, trees.shape[0], n_groups):
            t = trees[ti]
            c0 = col_offsets[t]
            nc = col_offsets[t + 1] - c0
            for L in range(leaf_offsets[t], leaf_offsets[t + 1]):
                m = leaf_m[L]
                size = 1 << m
                full = size - 1
                length = 0
                while length < edge_parent.shape[1] and edge_parent[L, length] >= 0:
                    length += 1
                for i in range((m + 1) * size):
                    S[i] = 0.0
                for b in range(n_bg):  # counts of the background rows' failure masks Z
                    Z = 0
                    for j in range(length):
                        if bdir[b, edge_parent[L, j]] != edge_left[L, j]:
                            Z |= 1 << edge_bit[L, j]
                    S[popcount[Z] * size + Z] += 1.0
                for k in range(m + 1):  # ranked zeta: S[k, M] = #{b: Z_b <= M, |Z_b| = k}
                    o = k * size
                    for bit in range(m):
                        step = 1 << bit
                        for M in range(size):
                            if M & step:
                                S[o + M] += S[o + M - step]
                for M in range(size):
                    c = m - popcount[M]
                    minus = 0.0
                    if c > 0:
                        for k in range(popcount[M] + 1):
                            minus += S[k * size + M] * neg[k, c]
                    for a in range(m):
                        if M & (1 << a):
                            w = 0.0
                            lower = M - (1 << a)
                            for k in range(1, popcount[M] + 1):
                                w += pos[k, c] * (S[k * size + M] - S[k * size + lower])
                            T[M * m + a] = w
                        else:
                            T[M * m + a] = -minus
                node = leaf_node[L]
                for r in range(n_rows):
                    F = 0
                    for j in range(length):
                        p = edge_parent[L, j]
                        xv = X[r, feature[p]]
                        if np.isnan(xv):
                            goes_left = missing_left[p]
                        else:
                            goes_left = 1 if xv <= threshold[p] else 0
                        if goes_left != edge_left[L, j]:
                            F |= 1 << edge_bit[L, j]
                    o = (full & ~F) * m
                    for a in range(m):
                        w = T[o + a]
                        if w != 0.0:
                            f = slot_feature[L, a]
                            for kk in range(nc):
                                col = cols[c0 + kk]
                                phi[r, f, col] += w * value[node, col]


TABLE_TREE_GROUPS = 16
"""Table trees are summed in this many interleaved groups (one per parallel task), then the
groups in order: a fixed count, not the thread count, so that the rounding of the sum, and the
values to the last bit, do not depend on the machine's cores or a Dask worker's threads."""


def _prange(n: int) -> range:  # pragma: no cover - replaced by numba.prange when compiled
    return range(n)


@cache
def _compiled() -> tuple[Any, Any, Any]:
    """The kernels compiled with numba (once per process; cached on disk)."""
    import numba

    globals()["_prange"] = numba.prange
    def jit(kernel: Any) -> Any:
        return numba.njit(parallel=True, cache=True, nogil=True)(kernel)

    return jit(_directions), jit(_pair_rows), jit(_table_trees)


def directions(flat: FlatEnsemble, X: np.ndarray) -> np.ndarray:
    """``(n, N)`` uint8: 1 where a row goes left at an internal node (rows already cast)."""
    directions_kernel, _, _ = _compiled()
    out = np.zeros((X.shape[0], flat.feature.shape[0]), dtype=np.uint8)
    directions_kernel(np.ascontiguousarray(X, dtype=np.float64), flat.feature, flat.threshold,
                      flat.missing_left, flat.is_leaf, out)
    return out


@dataclass(frozen=True)
class Plan:
    """Which trees use the per-leaf tables (the others walk pairs), fixed for a whole run so
    that every chunk of rows is computed the same way."""

    use_table: np.ndarray
    tables: LeafTables | None


def plan(flat: FlatEnsemble, n_rows: int, n_background: int, pairs_only: bool = False,
         method: str = "auto") -> Plan:
    """``method``: ``pairs`` walks every (row, background row) pair; ``tables`` counts the
    background per leaf (see the module docstring); ``auto`` picks per tree by estimated cost
    for ``n_rows`` rows. ``pairs_only`` (a per-pair output rescaling) forces ``pairs``."""
    n_trees = flat.offsets.shape[0] - 1
    if pairs_only or method == "pairs":
        return Plan(np.zeros(n_trees, dtype=bool), None)
    tables = leaf_tables(flat)
    use_table = tables.tree_m <= MAX_TABLE_BITS
    if method == "auto":
        sizes = np.diff(flat.offsets)
        use_table &= 2.0 * tables.tree_cost < 3.0 * n_rows * n_background * sizes
    return Plan(use_table, tables if use_table.any() else None)


def shap_values(flat: FlatEnsemble, X: np.ndarray, background_dirs: np.ndarray,
                scale: np.ndarray | None, how: Plan | None = None) -> np.ndarray:
    """Interventional SHAP values ``(n, d, K)`` averaged over the background.

    ``background_dirs`` is :func:`directions` of the (cast) background; ``scale`` is
    ``(n, n_background, K)`` per-pair rescaling for a transformed output, or ``None``;
    ``how`` is a :func:`plan` (by default, planned for these rows).
    """
    _, pair_rows, table_trees = _compiled()
    pos, neg = shapley_weights(flat.max_depth)
    n_bg = background_dirs.shape[0]
    how = how or plan(flat, X.shape[0], n_bg, pairs_only=scale is not None)
    use_table = how.use_table
    if scale is not None and use_table.any():
        raise ValueError("a per-pair output rescaling needs the pair walk on every tree")
    rows = np.ascontiguousarray(X, dtype=np.float64)
    out = np.zeros((X.shape[0], flat.n_features, flat.n_outputs))
    if not use_table.all():
        use_scale = scale is not None
        scale_arr = scale if scale is not None else np.ones((1, 1, 1))
        pair_rows(rows, flat.threshold, flat.missing_left, background_dirs, flat.feature,
                  flat.left, flat.right, flat.is_leaf, flat.value, flat.offsets, flat.cols,
                  flat.col_offsets, pos, neg,
                  np.ascontiguousarray(scale_arr, dtype=np.float64), use_scale, flat.max_depth,
                  use_table.astype(np.uint8), out)
    tables = how.tables
    if tables is not None and use_table.any():
        trees = np.flatnonzero(use_table).astype(np.int64)
        max_m = int(tables.tree_m[trees].max())
        groups = min(TABLE_TREE_GROUPS, trees.shape[0])
        part = np.zeros((groups, *out.shape))
        popcount = np.array([bin(i).count("1") for i in range(1 << max_m)], dtype=np.int64)
        table_trees(rows, flat.feature, flat.threshold, flat.missing_left, background_dirs,
                    tables.edge_parent, tables.edge_left, tables.edge_bit, tables.leaf_m,
                    tables.leaf_node, tables.slot_feature,
                    tables.leaf_offsets, trees, flat.value, flat.cols, flat.col_offsets, pos,
                    neg, popcount, max_m, part)
        out += part.sum(axis=0) / n_bg
    return out
