"""A tree ensemble flattened into the arrays the TreeSHAP kernels read.

All trees of a :class:`~xaudit.trees.TreeEnsemble` are concatenated (tree ``t`` owns global node
ids ``offsets[t]:offsets[t+1]``, parents before children as the extraction guarantees) and every
node carries what the kernels need without walking the tree again:

- ``value``: leaf values with the tree's weight (learning rate) folded in, ``(N, K)``;
- ``parent``/``is_left``: the edge into the node (``parent == -1`` at roots and at nodes not
  reachable from their root, which the kernels skip);
- ``zedge``: the edge's cover fraction ``cover[node] / cover[parent]`` (Lundberg et al. 2020's
  path-dependent "z");
- ``prev``: the node entered by the nearest ancestor edge splitting on the same feature (``-1``
  when none), which lets a kernel merge repeated features on a path in O(1);
- ``cols``/``col_offsets``: per tree, the output columns its leaves feed (one for each tree of a
  multi-output boosting model, all for a forest classifier), so kernels skip all-zero columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xaudit.errors import InputError
from xaudit.trees import LEAF, TreeEnsemble


@dataclass(frozen=True)
class FlatEnsemble:
    """The concatenated node arrays of an ensemble (see the module docstring)."""

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    is_leaf: np.ndarray
    left: np.ndarray
    right: np.ndarray
    parent: np.ndarray
    is_left: np.ndarray
    zedge: np.ndarray
    prev: np.ndarray
    value: np.ndarray
    path_weight: np.ndarray
    """Product of ``zedge`` from the root to each node (the leaf's share of the cover)."""
    zmerged: np.ndarray
    """Product of ``zedge`` over the edges from the root to each node that split on the same
    feature as the edge into it (the merged ``z`` of that feature on the node's path)."""
    offsets: np.ndarray
    cols: np.ndarray
    col_offsets: np.ndarray
    max_depth: int
    max_nodes: int
    max_cols: int
    base_score: np.ndarray
    n_features: int

    @property
    def n_outputs(self) -> int:
        """Width of the raw output."""
        return int(self.value.shape[1])

    def expected_value(self) -> np.ndarray:
        """Path-dependent expected raw output: ``base + sum_leaves value * cover share``."""
        leaves = (self.is_leaf == 1) & ((self.parent >= 0) | self._roots())
        weights = self.path_weight[leaves]
        return np.asarray(self.base_score + weights @ self.value[leaves])

    def _roots(self) -> np.ndarray:
        roots = np.zeros(self.feature.shape[0], dtype=bool)
        roots[self.offsets[:-1]] = True
        return roots

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Raw output in float64 of rows already cast by the ensemble, ``(n, K)``."""
        out = np.tile(self.base_score, (X.shape[0], 1))
        for t in range(self.offsets.shape[0] - 1):
            s = int(self.offsets[t])
            node = np.zeros(X.shape[0], dtype=np.int64) + s
            active = self.is_leaf[node] == 0
            while np.any(active):
                current = node[active]
                x = X[np.flatnonzero(active), self.feature[current]]
                go_left = np.where(np.isnan(x), self.missing_left[current] == 1,
                                   x <= self.threshold[current])
                node[active] = np.where(go_left, self.left[current], self.right[current])
                active = self.is_leaf[node] == 0
            out += self.value[node]
        return out


@dataclass(frozen=True)
class LeafPaths:
    """Leaves as padded paths: ``edge_parent``/``edge_left``/``edge_slot``/``edge_pad``
    ``(L, D)``;
    ``slot_feature``/``slot_z`` ``(L, D)``; ``value`` ``(L, K)``."""

    edge_parent: np.ndarray
    edge_left: np.ndarray
    edge_slot: np.ndarray
    edge_pad: np.ndarray
    slot_feature: np.ndarray
    slot_z: np.ndarray
    value: np.ndarray
    leaf: np.ndarray
    """The leaves' node ids, ``(L,)`` (ascending: grouped by tree)."""


def leaf_paths(flat: FlatEnsemble) -> LeafPaths:
    """The padded root paths of every reachable leaf below a split."""
    leaves = np.flatnonzero((flat.is_leaf == 1) & (flat.parent >= 0))
    depth = flat.max_depth
    n = leaves.shape[0]
    edge_node = np.full((n, depth), -1, dtype=np.int64)
    current = leaves.copy()
    for step in range(depth):
        up = np.where(current >= 0, flat.parent[np.maximum(current, 0)], -1)
        edge = up >= 0  # the node is entered by an edge (it is not the root)
        edge_node[edge, step] = current[edge]
        current = up
    padded = edge_node < 0
    safe = np.maximum(edge_node, 0)
    edge_parent = np.where(padded, 0, flat.parent[safe])
    edge_left = np.where(padded, True, flat.is_left[safe] == 1)
    feature = np.where(padded, -1, flat.feature[edge_parent])
    zedge = np.where(padded, 1.0, flat.zedge[safe])
    edge_slot = np.arange(depth)[None, :].repeat(n, axis=0)
    for step in range(depth):  # the slot of an edge: the deepest edge with the same feature
        for earlier in range(step - 1, -1, -1):
            same = (feature[:, earlier] == feature[:, step]) & (feature[:, step] >= 0)
            edge_slot[:, step] = np.where(same, edge_slot[:, earlier], edge_slot[:, step])
    slot_z = np.ones((n, depth))
    slot_feature = np.zeros((n, depth), dtype=np.int64)
    rows = np.arange(n)
    for step in range(depth):
        slot = edge_slot[:, step]
        slot_z[rows, slot] *= zedge[:, step]
        slot_feature[rows, slot] = np.where(feature[:, step] >= 0, feature[:, step],
                                            slot_feature[rows, slot])
    return LeafPaths(edge_parent, edge_left, edge_slot, padded, slot_feature, slot_z,
                     flat.value[leaves], leaves)


MAX_TABLE_BITS = 12
"""Leaves with more distinct features on their path than this use the pair walk."""


@dataclass(frozen=True)
class LeafTables:
    """Leaf paths with compact feature bits, as the interventional table kernel reads them."""

    edge_parent: np.ndarray
    """``(L, D)`` parent node of each edge from the leaf upwards, ``-1`` past the root."""
    edge_left: np.ndarray
    edge_bit: np.ndarray
    leaf_m: np.ndarray
    leaf_node: np.ndarray
    slot_feature: np.ndarray
    leaf_offsets: np.ndarray
    tree_m: np.ndarray
    """Per tree, the most distinct features on one leaf's path."""
    tree_cost: np.ndarray
    """Per tree, ``sum over leaves 2^m (m + 1) m``: the work of its tables."""


def leaf_tables(flat: FlatEnsemble) -> LeafTables:
    """Every reachable leaf's path with its distinct features numbered ``0..m-1``."""
    paths = leaf_paths(flat)
    n, depth = paths.edge_slot.shape
    used = (paths.edge_slot == np.arange(depth)[None, :]) & ~paths.edge_pad
    compact = np.cumsum(used, axis=1) - 1
    rows = np.arange(n)[:, None]
    edge_bit = np.where(paths.edge_pad, 0, compact[rows, paths.edge_slot])
    leaf_m = used.sum(axis=1).astype(np.int64)
    slot_feature = np.zeros((n, depth), dtype=np.int64)
    r, j = np.nonzero(used)
    slot_feature[r, compact[r, j]] = paths.slot_feature[r, j]
    leaf_offsets = np.searchsorted(paths.leaf, flat.offsets).astype(np.int64)
    n_trees = flat.offsets.shape[0] - 1
    tree_of = np.searchsorted(flat.offsets, paths.leaf, side="right") - 1
    tree_m = np.zeros(n_trees, dtype=np.int64)
    np.maximum.at(tree_m, tree_of, leaf_m)
    tree_cost = np.zeros(n_trees)
    np.add.at(tree_cost, tree_of, (2.0 ** np.minimum(leaf_m, 60)) * (leaf_m + 1) * leaf_m)
    return LeafTables(np.where(paths.edge_pad, -1, paths.edge_parent),
                      paths.edge_left.astype(np.uint8), edge_bit.astype(np.int64), leaf_m,
                      paths.leaf.astype(np.int64), slot_feature, leaf_offsets, tree_m,
                      tree_cost)


def flatten(ensemble: TreeEnsemble) -> FlatEnsemble:
    """Concatenate and annotate the trees of ``ensemble`` (see the module docstring)."""
    sizes = np.array([tree.n_nodes for tree in ensemble.trees], dtype=np.int64)
    offsets = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    n = int(offsets[-1])
    k = ensemble.n_outputs
    left = np.full(n, LEAF, dtype=np.int64)
    right = np.full(n, LEAF, dtype=np.int64)
    feature = np.full(n, -1, dtype=np.int64)
    threshold = np.zeros(n)
    missing_left = np.zeros(n, dtype=np.uint8)
    value = np.zeros((n, k))
    cover = np.zeros(n)
    cols: list[int] = []
    col_offsets = [0]
    for t, (tree, weight) in enumerate(zip(ensemble.trees, ensemble.weights, strict=True)):
        s, e = int(offsets[t]), int(offsets[t + 1])
        internal = tree.left != LEAF
        left[s:e] = np.where(internal, tree.left + s, LEAF)
        right[s:e] = np.where(internal, tree.right + s, LEAF)
        feature[s:e] = np.where(internal, tree.feature, -1)
        threshold[s:e] = tree.threshold
        missing_left[s:e] = tree.missing_left
        value[s:e] = np.where(internal[:, None], 0.0, tree.value * weight)
        cover[s:e] = tree.cover
        active = np.flatnonzero(np.any(value[s:e] != 0.0, axis=0))
        cols.extend(int(c) for c in active)
        col_offsets.append(len(cols))
    is_leaf = (left == LEAF).astype(np.uint8)
    if np.any(feature[is_leaf == 0] >= ensemble.n_features) or np.any(feature[is_leaf == 0] < 0):
        raise InputError("a tree splits on a feature index outside the ensemble's features")
    parent = np.full(n, -1, dtype=np.int64)
    is_left = np.zeros(n, dtype=np.uint8)
    internal_ids = np.flatnonzero(is_leaf == 0)
    parent[left[internal_ids]] = internal_ids
    parent[right[internal_ids]] = internal_ids
    is_left[left[internal_ids]] = 1
    children = np.flatnonzero(parent >= 0)
    if np.any(parent[children] >= children):
        raise InputError("tree nodes must come after their parents (node 0 is the root)")
    reachable = _reachable(parent, offsets)
    parent = np.where(reachable, parent, -1)
    zedge = np.zeros(n)
    has_parent = parent >= 0
    parent_cover = cover[parent[has_parent]]
    with np.errstate(divide="ignore", invalid="ignore"):
        zedge[has_parent] = np.where(parent_cover > 0, cover[has_parent] / parent_cover, 0.0)
    edge_feature = np.where(has_parent, feature[np.maximum(parent, 0)], -1)
    depth, path_weight, prev = _ancestry(parent, edge_feature, zedge)
    zmerged = zedge.copy()
    for level in range(1, int(depth.max()) + 1 if n else 1):
        nodes = np.flatnonzero((depth == level) & (prev >= 0))
        zmerged[nodes] = zmerged[prev[nodes]] * zedge[nodes]
    max_nodes = int(sizes.max()) if sizes.size else 1
    col_arr = np.asarray(cols, dtype=np.int64)
    col_off = np.asarray(col_offsets, dtype=np.int64)
    return FlatEnsemble(
        feature=feature, threshold=threshold, missing_left=missing_left, is_leaf=is_leaf,
        left=left, right=right, parent=parent, is_left=is_left, zedge=zedge, prev=prev,
        value=value, path_weight=path_weight, zmerged=zmerged, offsets=offsets, cols=col_arr,
        col_offsets=col_off, max_depth=max(1, int(depth.max()) if n else 1),
        max_nodes=max_nodes, max_cols=max(1, int(np.diff(col_off).max()) if len(col_off) > 1
                                          else 1),
        base_score=np.asarray(ensemble.base_score, dtype=np.float64),
        n_features=int(ensemble.n_features),
    )


def _reachable(parent: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Nodes connected to their tree's root (parents come first, so one forward sweep)."""
    reachable = np.zeros(parent.shape[0], dtype=bool)
    reachable[offsets[:-1]] = True
    has_parent = np.flatnonzero(parent >= 0)
    # Propagate level by level: a node is reachable when its parent is.
    frontier_changed = True
    while frontier_changed:
        new = reachable.copy()
        new[has_parent] |= reachable[parent[has_parent]]
        frontier_changed = bool(np.any(new != reachable))
        reachable = new
    return reachable


def _ancestry(parent: np.ndarray, edge_feature: np.ndarray,
              zedge: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth, product of cover fractions from the root, and ``prev`` (same-feature ancestor)."""
    n = parent.shape[0]
    depth = np.zeros(n, dtype=np.int64)
    path_weight = np.ones(n)
    prev = np.full(n, -1, dtype=np.int64)
    ancestor = parent.copy()  # the node entered by the candidate ancestor edge
    has_parent = parent >= 0
    while True:
        live = np.flatnonzero(ancestor >= 0)
        if live.size == 0:
            break
        depth[live] += 1
        anc = ancestor[live]
        match = (prev[live] < 0) & (edge_feature[anc] == edge_feature[live]) & \
            (edge_feature[anc] >= 0)
        prev[live[match]] = anc[match]
        ancestor[live] = parent[anc]
    # path weights: product of zedge over the edges from the root
    for level in range(1, int(depth.max()) + 1 if n else 1):
        nodes = np.flatnonzero((depth == level) & has_parent)
        path_weight[nodes] = path_weight[parent[nodes]] * zedge[nodes]
    return depth, path_weight, prev
