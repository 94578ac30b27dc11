"""Shared state of the gradient-boosting library adapters (XGBoost, LightGBM)."""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xaudit.adapters.estimators import estimator_randomizations, estimator_randomized, refit_clone
from xaudit.adapters.frames import to_frame
from xaudit.adapters.trees.extract import extract_tree_ensemble
from xaudit.model import ModelBase
from xaudit.randomization import Randomization, RandomizedStage
from xaudit.trees import TreeEnsemble


@dataclass
class BoostedModel(ModelBase, ABC):
    """A library's booster or scikit-learn-API model, with its trees extracted on demand."""

    native: Any = None
    output: str = "predict"
    columns: tuple[str, ...] | None = None
    categories: dict[str, list[Any]] | None = None
    _trees: TreeEnsemble | None = field(default=None, repr=False, compare=False)

    def _rows(self, X: np.ndarray) -> Any:
        """``X`` as a scikit-learn-API model was fitted: a DataFrame with its columns, or the
        array."""
        return X if self.columns is None else to_frame(X, self.columns, self.categories)

    def tree_ensemble(self) -> TreeEnsemble:
        """The model's trees (extracted on first use, then cached); raw output = margin."""
        if self._trees is None:
            self._trees = extract_tree_ensemble(self.native)
        return self._trees

    def randomizations(self) -> tuple[str, ...]:
        """``leaves`` through the tree structure, then ``labels`` for scikit-learn-API models
        (a bare Booster has no estimator to clone); see :mod:`xaudit.adapters.estimators`."""
        return estimator_randomizations(self, self.native)

    def randomized(self, request: Randomization,
                   rng: np.random.Generator) -> tuple[RandomizedStage, ...]:
        """Permuted leaves, or a clone retrained on permuted labels; this model is unchanged."""
        return estimator_randomized(self, self.native, request, rng, self._refit)

    def _refit(self, X: np.ndarray, y: np.ndarray) -> BoostedModel:
        return replace(
            self, name=f"{self.name} (retrained on permuted labels)",
            native=refit_clone(self.native, self._rows(X), y), _trees=None)
