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


def estimator_capability_reasons(estimator: object) -> dict[str, str]:
    """Why ``estimator`` lacks the capabilities :func:`estimator_capabilities` leaves out (the
    tree extractor's reason for ``tree_ensemble``), for the host's refusals."""
    reasons: dict[str, str] = {}
    why = tree_support(estimator)
    if why is not None:
        reasons[Capability.TREE_ENSEMBLE.value] = why
        if not refittable(estimator):
            reasons[Capability.RANDOMIZATION.value] = (
                "it has no tree structure to permute and no scikit-learn estimator API "
                "(get_params, fit) to retrain on permuted labels")
    return reasons


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


def class_names(classes: Any, n: int) -> list[str]:
    """Names of a classifier's ``n`` (at least 2) output classes, in the booster's order: its
    ``classes_`` as strings, then ``class_index_<i>`` for classes the booster has but the
    training labels never showed (a model fitted on labels of one class still gives two, or
    ``num_class``, outputs); ``0 .. n-1`` for a bare booster (``classes`` ``None``)."""
    n = max(n, 2)
    if classes is None:
        return [str(k) for k in range(n)]
    known = [str(c) for c in classes]
    return known + [f"class_index_{k}" for k in range(len(known), n)]


def refit_clone(estimator: object, X: Any, y: np.ndarray) -> Any:
    """scikit-learn's ``clone`` of ``estimator`` fitted on ``X`` and ``y`` (the original is
    untouched). ``X`` is an array or the DataFrame the estimator was fitted on."""
    from sklearn.base import clone

    fresh = clone(estimator)
    fresh.fit(X, y)
    return fresh
