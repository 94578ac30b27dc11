"""Shared state of the gradient-boosting library adapters (XGBoost, LightGBM)."""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass, field
from typing import Any

from xaudit.adapters.trees.extract import extract_tree_ensemble
from xaudit.model import ModelBase
from xaudit.trees import TreeEnsemble


@dataclass
class BoostedModel(ModelBase, ABC):
    """A library's booster or scikit-learn-API model, with its trees extracted on demand."""

    native: Any = None
    output: str = "predict"
    columns: tuple[str, ...] | None = None
    categories: dict[str, list[Any]] | None = None
    _trees: TreeEnsemble | None = field(default=None, repr=False, compare=False)

    def tree_ensemble(self) -> TreeEnsemble:
        """The model's trees (extracted on first use, then cached); raw output = margin."""
        if self._trees is None:
            self._trees = extract_tree_ensemble(self.native)
        return self._trees
