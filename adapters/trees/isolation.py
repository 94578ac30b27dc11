"""scikit-learn's ``IsolationForest`` as trees whose output is the mean path length.

Liu, Ting and Zhou 2008, "Isolation Forest" (ICDM): a row's anomaly score is
``s(x) = 2^(-E[h(x)] / c(psi))``, where ``h(x)`` is the path length of ``x`` in one tree, ``E``
the mean over the trees, ``psi`` the number of rows each tree was grown on and

    ``c(n) = 2 H(n - 1) - 2 (n - 1) / n``,   ``H(i) = ln(i) + 0.5772156649`` (Euler's constant)

the average path length of an unsuccessful search in a binary search tree of ``n`` rows
(``c(1) = 0``, ``c(2) = 1``), added at a leaf that still holds ``n`` training rows (the tree
stopped growing before isolating them). scikit-learn's ``score_samples`` returns ``-s(x)``,
``decision_function`` returns ``-s(x) - offset_``; each tree sees the columns
``estimators_features_`` lists (``max_features``) and compares float32 inputs.

xaudit explains ``E[h(x)]``, as shap's ``TreeExplainer`` does: every leaf's value is its depth
plus ``c`` of its training rows, each tree weighs ``1 / n_trees``, and the identity transform
gives the model's output. The sklearn adapter's ``output: path_length`` (its default for an
``IsolationForest``) predicts it from ``score_samples`` by inverting the score,
``E[h(x)] = -c(psi) log2(-score_samples(x))``. A shorter path is more anomalous, so a negative
attribution pushes the row toward an anomaly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaudit.adapters.trees.common import make_tree
from xaudit.trees import LEAF, Tree, TreeEnsemble


def average_path_length(n: np.ndarray | float) -> np.ndarray:
    """``c(n)`` of Liu et al. 2008 for each count in ``n`` (0 for ``n <= 1``, 1 for 2)."""
    counts = np.atleast_1d(np.asarray(n, dtype=np.float64))
    out = np.zeros_like(counts)
    out[counts == 2] = 1.0
    many = counts > 2
    m = counts[many]
    out[many] = 2.0 * (np.log(m - 1.0) + np.euler_gamma) - 2.0 * (m - 1.0) / m
    return out


def mean_path_length(model: Any, X: Any) -> np.ndarray:
    """``E[h(x)]`` of a fitted IsolationForest, recovered from its ``score_samples``."""
    scores = np.asarray(model.score_samples(X), dtype=np.float64)
    return np.asarray(-average_path_length(model.max_samples_)[0] * np.log2(-scores))


def extract_isolation(model: Any, source: str) -> TreeEnsemble:
    """The trees of a fitted IsolationForest; their raw output is :func:`mean_path_length`."""
    trees = [_tree(estimator.tree_, np.asarray(features, dtype=np.int64))
             for estimator, features in zip(model.estimators_, model.estimators_features_,
                                            strict=True)]
    n = len(trees)
    return TreeEnsemble(trees, np.full(n, 1.0 / n), np.zeros(1), int(model.n_features_in_),
                        input_dtype="float32", source=source,
                        notes={"output": "mean path length E[h(x)]",
                               "max_samples": str(model.max_samples_)})


def _tree(tree: Any, features: np.ndarray) -> Tree:
    """One isolation tree: leaves hold ``depth + c(rows at the leaf)``; its split features,
    indices into ``features``, are mapped back to the model's columns."""
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    depth = np.zeros(left.shape[0], dtype=np.int64)
    for node in range(left.shape[0]):  # scikit-learn numbers children after their parent
        if left[node] != LEAF:
            depth[left[node]] = depth[right[node]] = depth[node] + 1
    leaf = left == LEAF
    value = np.where(leaf, depth + average_path_length(tree.n_node_samples), 0.0)
    feature = np.where(leaf, -1, features[np.maximum(tree.feature, 0)])
    return make_tree(left, right, feature, tree.threshold, tree.missing_go_to_left,
                     value[:, None], tree.weighted_n_node_samples)
