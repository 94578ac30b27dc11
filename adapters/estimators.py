"""What the fitted-estimator adapters (scikit-learn, XGBoost, LightGBM) share: their capabilities
and their randomizations.

Randomizations (the ``randomization`` capability, :mod:`xaudit.randomization`):

- ``leaves`` for models with the ``tree_ensemble`` capability: the leaf values of the
  framework-neutral structure are permuted or resampled
  (:mod:`xaudit.adapters.trees.randomize`);
- ``labels`` for estimators with the scikit-learn API (``get_params`` and ``fit``): Adebayo et
  al. 2018's data randomization test. scikit-learn's ``clone`` (same hyper-parameters, not
  fitted) is trained on the request's training rows with the labels permuted by ``rng``. A bare
  XGBoost or LightGBM ``Booster`` has no estimator to clone (its training call is not recorded),
  so it offers ``leaves`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xaudit.adapters.trees.extract import tree_support
from xaudit.adapters.trees.randomize import randomized_leaves
from xaudit.model import Capability, Model
from xaudit.randomization import LABELS, LEAVES, Randomization, RandomizedStage, refusal
from xaudit.trees import TreeModel

Refit = Callable[[np.ndarray, np.ndarray], Model]
"""Builds the adapter's model around a clone trained on ``(X_train, permuted labels)``."""


def refittable(estimator: object) -> bool:
    """Whether ``estimator`` has the scikit-learn API that ``clone`` and refitting need."""
    return hasattr(estimator, "get_params") and hasattr(estimator, "fit")


def estimator_capabilities(estimator: object) -> frozenset[str]:
    """``predict``, ``tree_ensemble`` for supported tree models, ``randomization`` when one of
    :func:`estimator_randomizations`' kinds applies."""
    tree = tree_support(estimator) is None
    return frozenset({Capability.PREDICT.value}
                     | ({Capability.TREE_ENSEMBLE.value} if tree else set())
                     | ({Capability.RANDOMIZATION.value} if tree or refittable(estimator)
                        else set()))


def estimator_randomizations(model: Model, estimator: object) -> tuple[str, ...]:
    """``leaves`` when ``model`` has the ``tree_ensemble`` capability, then ``labels`` when
    ``estimator`` can be refit."""
    leaves = (LEAVES,) if Capability.TREE_ENSEMBLE in model.capabilities else ()
    return leaves + ((LABELS,) if refittable(estimator) else ())


def estimator_randomized(model: TreeModel, estimator: object, request: Randomization,
                         rng: np.random.Generator, refit: Refit) -> tuple[RandomizedStage, ...]:
    """The one randomized model of ``request``: permuted leaves, or ``refit`` on the training
    rows with labels permuted by ``rng``."""
    if request.kind not in estimator_randomizations(model, estimator):
        raise refusal(model, request.kind)
    if request.kind == LEAVES:
        return (RandomizedStage(LEAVES, randomized_leaves(model, request.leaves, rng,
                                                          request.probe_rows)),)
    X_train, y_train = request.training(model)
    return (RandomizedStage(LABELS, refit(X_train, rng.permutation(y_train))),)


def refit_clone(estimator: object, X: Any, y: np.ndarray) -> Any:
    """scikit-learn's ``clone`` of ``estimator`` fitted on ``X`` and ``y`` (the original is
    untouched). ``X`` is an array or the DataFrame the estimator was fitted on."""
    from sklearn.base import clone

    fresh = clone(estimator)
    fresh.fit(X, y)
    return fresh
