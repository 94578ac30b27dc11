"""A framework-neutral tree-ensemble structure (the ``tree_ensemble`` capability).

Adapters extract it from scikit-learn, XGBoost and LightGBM models; tree explainers (TreeSHAP)
read only this structure. The ensemble's raw output is

    raw(x) = base_score + sum_t weights[t] * value_t[leaf_t(x)]        shape (n_outputs,)

and the model's output is ``output_transform(raw(x))`` (identity, logistic or softmax).
At an internal node, a row goes left when ``x[feature] <= threshold`` and, when the value is
missing (NaN), to the side ``missing_left`` says. Comparisons happen after casting rows to
``input_dtype`` (scikit-learn trees compare float32 inputs, for example), so the structure's
prediction equals the model's bit for bit up to summation order. Libraries that sum leaf values
in float32 (XGBoost) set ``accumulate_dtype="float32"``: the sum then runs in float32, tree by
tree in the ensemble's order, starting from the float32 base score, exactly as they do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from .errors import InputError
from .model import Model

OutputTransform = Literal["identity", "logistic", "softmax"]
LEAF = -1


@dataclass
class Tree:
    """One binary tree as flat node arrays (node 0 is the root; leaves have ``left == -1``).

    ``value`` is ``(n_nodes, n_outputs)``; only leaves' rows are used for prediction, internal
    rows may hold the cover-weighted mean of their subtree. ``cover`` is the (weighted) number of
    training rows reaching each node, as path-dependent TreeSHAP needs.
    """

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    cover: np.ndarray

    def __post_init__(self) -> None:
        self.left = np.asarray(self.left, dtype=np.int64)
        self.right = np.asarray(self.right, dtype=np.int64)
        self.feature = np.asarray(self.feature, dtype=np.int64)
        self.threshold = np.asarray(self.threshold, dtype=np.float64)
        self.missing_left = np.asarray(self.missing_left, dtype=bool)
        self.value = np.asarray(self.value, dtype=np.float64)
        if self.value.ndim == 1:
            self.value = self.value[:, None]
        self.cover = np.asarray(self.cover, dtype=np.float64)
        n = self.left.shape[0]
        for name in ("right", "feature", "threshold", "missing_left", "cover"):
            if getattr(self, name).shape != (n,):
                raise InputError(f"tree field {name!r} has shape {getattr(self, name).shape}, "
                                 f"expected ({n},)")
        if self.value.shape[0] != n:
            raise InputError(f"tree value has {self.value.shape[0]} rows for {n} nodes")

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.left.shape[0])

    @property
    def max_depth(self) -> int:
        """Length of the longest root-to-leaf path, in edges."""
        depth = np.zeros(self.n_nodes, dtype=np.int64)
        for node in range(self.n_nodes):  # parents come before children in every format used
            if self.left[node] != LEAF:
                depth[self.left[node]] = depth[self.right[node]] = depth[node] + 1
        return int(depth.max())

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """The leaf each row of ``X`` (already cast to the ensemble's dtype) ends in."""
        node = np.zeros(X.shape[0], dtype=np.int64)
        rows = np.arange(X.shape[0])
        active = self.left[node] != LEAF
        while np.any(active):
            r, current = rows[active], node[active]
            x = X[r, self.feature[current]]
            go_left = np.where(np.isnan(x), self.missing_left[current],
                               x <= self.threshold[current])
            node[r] = np.where(go_left, self.left[current], self.right[current])
            active = self.left[node] != LEAF
        return node


@dataclass
class TreeEnsemble:
    """Trees, per-tree weights, a base score and the transform to the model's output."""

    trees: list[Tree]
    weights: np.ndarray
    base_score: np.ndarray
    n_features: int
    output_transform: OutputTransform = "identity"
    input_dtype: Literal["float32", "float64"] = "float64"
    learning_rate: float | None = None
    """Informational: already folded into ``weights`` for boosting models."""
    accumulate_dtype: Literal["float32", "float64"] = "float64"
    """Precision of the running sum in :meth:`predict_raw` (each term ``weights[t] * value`` is
    formed in float64, then rounded to this dtype before it is added)."""
    source: str = ""
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=np.float64)
        self.base_score = np.atleast_1d(np.asarray(self.base_score, dtype=np.float64))
        if self.weights.shape != (len(self.trees),):
            raise InputError(f"{len(self.trees)} trees but {self.weights.shape} weights")
        widths = {tree.value.shape[1] for tree in self.trees}
        if widths != {self.n_outputs}:
            raise InputError(f"tree value widths {sorted(widths)} differ from the base score's "
                             f"{self.n_outputs} output(s)")

    @property
    def n_outputs(self) -> int:
        """Width of the raw output."""
        return int(self.base_score.shape[0])

    def cast(self, X: np.ndarray) -> np.ndarray:
        """Rows as the model compares them: cast to ``input_dtype``, then to float64."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise InputError(f"tree ensemble expects (n, {self.n_features}) rows, got {X.shape}")
        return X.astype(np.float32).astype(np.float64) if self.input_dtype == "float32" else X

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """``base_score + sum_t weights[t] * leaf value``: ``(n, n_outputs)``."""
        rows = self.cast(X)
        dtype = np.float32 if self.accumulate_dtype == "float32" else np.float64
        out = np.tile(self.base_score.astype(dtype), (rows.shape[0], 1))
        for weight, tree in zip(self.weights, self.trees, strict=True):
            out += (weight * tree.value[tree.leaves(rows)]).astype(dtype)
        return out.astype(np.float64)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """The model's output from raw scores."""
        if self.output_transform == "logistic":
            return np.asarray(1.0 / (1.0 + np.exp(-raw)))
        if self.output_transform == "softmax":
            shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
            return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
        return raw


@runtime_checkable
class TreeModel(Model, Protocol):
    """A model with the ``tree_ensemble`` capability."""

    def tree_ensemble(self) -> TreeEnsemble:
        """The model's trees in the framework-neutral form."""
        ...
