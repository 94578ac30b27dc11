"""Helpers the tree extractors share, and the table they register themselves in.

Conventions of the extracted trees (beyond :mod:`xaudit.trees`): node 0 is the root and every
parent comes before its children; a leaf has ``left == right == -1``, ``feature == -1``,
``threshold == 0`` and ``missing_left == False``; internal nodes' ``value`` rows are zero unless
the library stores a value there; a tree of a multi-output model holds its leaf values in the
column of the output it feeds and zeros in the other columns.

Each library's extractor module (:mod:`.sklearn`, :mod:`.xgboost`, :mod:`.lightgbm`) imports
only this module and calls :func:`register_extractor` at import time; the dispatcher in
:mod:`.extract` imports an extractor module by name when a model of its library arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xaudit.errors import CapabilityError
from xaudit.trees import LEAF, Tree, TreeEnsemble


@dataclass(frozen=True)
class Extractor:
    """What one library's extractor offers: a cheap support test and the extraction."""

    library: str
    unsupported_reason: Callable[[Any], str | None]
    """``None`` when the model is supported, else why not (from its type and settings only)."""
    extract: Callable[[Any], TreeEnsemble]


EXTRACTORS: dict[str, Extractor] = {}
"""Registered extractors by library (the root module name of the model's class)."""


def register_extractor(extractor: Extractor) -> None:
    """Make ``extractor`` the one used for models of ``extractor.library``."""
    EXTRACTORS[extractor.library] = extractor


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
