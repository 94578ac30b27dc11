"""Fitted tree models as framework-neutral :class:`~xaudit.trees.TreeEnsemble` structures.

:func:`extract_tree_ensemble` dispatches on the model's library (by module name, so this module
imports no framework) to :mod:`.trees_sklearn`, :mod:`.trees_xgboost` or :mod:`.trees_lightgbm`;
:func:`tree_support` says, cheaply and without extracting, whether a model is one of the supported
tree models. The helpers here are shared by the three extractors.

Conventions of the extracted trees (beyond :mod:`xaudit.trees`): node 0 is the root and every
parent comes before its children; a leaf has ``left == right == -1``, ``feature == -1``,
``threshold == 0`` and ``missing_left == False``; internal nodes' ``value`` rows are zero unless
the library stores a value there; a tree of a multi-output model holds its leaf values in the
column of the output it feeds and zeros in the other columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xaudit.errors import CapabilityError
from xaudit.trees import LEAF, Tree, TreeEnsemble

LIBRARIES = ("sklearn", "xgboost", "lightgbm")


def _library(model: object) -> str | None:
    root = type(model).__module__.split(".")[0]
    return root if root in LIBRARIES else None


def tree_support(model: object) -> str | None:
    """``None`` when ``model`` is a supported fitted tree model, else the reason it is not.

    The check looks at the model's type and hyper-parameters only; an extraction can still be
    refused for what only the fitted trees show (a categorical split, say).
    """
    library = _library(model)
    if library == "sklearn":
        from . import trees_sklearn

        return trees_sklearn.unsupported_reason(model)
    if library == "xgboost":
        from . import trees_xgboost

        return trees_xgboost.unsupported_reason(model)
    if library == "lightgbm":
        from . import trees_lightgbm

        return trees_lightgbm.unsupported_reason(model)
    return (f"{type(model).__qualname__} is not a scikit-learn, XGBoost or LightGBM tree model "
            "(a Pipeline is not one either: explain its final tree estimator on transformed "
            "features instead)")


def extract_tree_ensemble(model: object) -> TreeEnsemble:
    """The trees of a fitted tree model whose ``predict_raw`` equals the model's raw output.

    Raw output: ``predict_proba`` for decision-tree, random-forest and extra-trees classifiers;
    ``decision_function`` (binary: one column) for scikit-learn boosting classifiers, the margin
    (``output_margin=True`` / ``raw_score=True``) for XGBoost and LightGBM; ``predict`` for
    regressors. Raises :class:`~xaudit.errors.CapabilityError` naming what is not representable.
    """
    reason = tree_support(model)
    if reason is not None:
        raise CapabilityError(f"no tree_ensemble for {type(model).__qualname__}: {reason}")
    library = _library(model)
    if library == "sklearn":
        from . import trees_sklearn

        return trees_sklearn.extract(model)
    if library == "xgboost":
        from . import trees_xgboost

        return trees_xgboost.extract(model)
    from . import trees_lightgbm

    return trees_lightgbm.extract(model)


def refuse(model: object, reason: str) -> CapabilityError:
    """The error for a model whose trees cannot be represented (raise it)."""
    return CapabilityError(f"no tree_ensemble for {type(model).__qualname__}: {reason}")


def feature_label(index: int, names: Sequence[str] | None) -> str:
    """``feature 3 ('age')`` when names are known, else ``feature 3``."""
    if names is not None and 0 <= index < len(names):
        return f"feature {index} ({names[index]!r})"
    return f"feature {index}"


def make_tree(
    left: np.ndarray, right: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
    missing_left: np.ndarray, value: np.ndarray, cover: np.ndarray,
) -> Tree:
    """A :class:`Tree` with the leaf conventions above applied (``left == -1`` marks a leaf)."""
    left = np.asarray(left, dtype=np.int64)
    leaf = left == LEAF
    right = np.where(leaf, LEAF, np.asarray(right, dtype=np.int64))
    return Tree(
        left=left,
        right=right,
        feature=np.where(leaf, -1, np.asarray(feature, dtype=np.int64)),
        threshold=np.where(leaf, 0.0, np.asarray(threshold, dtype=np.float64)),
        missing_left=np.where(leaf, False, np.asarray(missing_left, dtype=bool)),
        value=value,
        cover=cover,
    )


def preorder(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Reachable node ids in depth-first pre-order from the root (parents before children)."""
    order: list[int] = []
    stack = [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if left[node] != LEAF:
            stack.append(int(right[node]))
            stack.append(int(left[node]))
    return np.asarray(order, dtype=np.int64)


def renumber(order: np.ndarray, *arrays: np.ndarray, left: np.ndarray,
             right: np.ndarray) -> tuple[np.ndarray, ...]:
    """``arrays`` restricted to ``order``, and ``left``/``right`` remapped to the new ids."""
    new_id = np.full(left.shape[0], LEAF, dtype=np.int64)
    new_id[order] = np.arange(order.shape[0])
    old_left, old_right = left[order], right[order]
    new_left = np.where(old_left == LEAF, LEAF, new_id[np.maximum(old_left, 0)])
    new_right = np.where(old_right == LEAF, LEAF, new_id[np.maximum(old_right, 0)])
    return (new_left, new_right, *(a[order] for a in arrays))


def one_hot_columns(values: np.ndarray, column: int, n_outputs: int) -> np.ndarray:
    """``(n_nodes, n_outputs)`` zeros with ``values`` in ``column``."""
    out = np.zeros((values.shape[0], n_outputs), dtype=np.float64)
    out[:, column] = values
    return out


def names_of(model: Any) -> list[str] | None:
    """The model's feature names (``feature_names_in_``), if it was fitted with names."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]
