"""scikit-learn tree models as :class:`~xaudit.trees.TreeEnsemble` structures.

Sources, from scikit-learn's documentation of the fitted attributes:

- Single trees, ``tree_`` (``sklearn.tree._tree.Tree``): ``children_left``/``children_right``
  (``-1`` at leaves), ``feature``, ``threshold``, ``value``, ``weighted_n_node_samples`` and
  ``missing_go_to_left``; see "Understanding the decision tree structure"
  (https://scikit-learn.org/stable/auto_examples/tree/plot_unveil_tree_structure.html). Inputs
  are converted to float32 before the ``x <= threshold`` test (``DecisionTreeClassifier.predict``:
  "converted to dtype=np.float32"); since scikit-learn 1.4 a classifier's ``value`` holds class
  fractions, which ``predict_proba`` returns as they are; NaNs go where ``missing_go_to_left``
  says (user guide 1.10.9, "Missing Values Support").
- Forests: ``predict_proba`` / ``predict`` are the mean over ``estimators_`` of the trees'.
- ``GradientBoosting*``: ``estimators_`` is ``(n_estimators_, K)`` regression trees; the raw
  prediction (``decision_function``) is the init estimator's raw prediction plus
  ``learning_rate`` times the sum of the trees' outputs. The init raw prediction is
  ``link(clip(init_.predict_proba(X), eps, 1 - eps))`` for classifiers (logit for binary,
  symmetric multinomial logit ``log(p / geometric_mean(p))`` for multiclass; scikit-learn's
  ``sklearn/_loss/link.py``) and ``init_.predict(X)`` for regressors, or zero for ``init='zero'``.
- ``HistGradientBoosting*``: the fitted predictors (``_predictors[iteration][k].nodes``) and
  ``_baseline_prediction``; scikit-learn documents no public view of them. Each node record
  holds ``num_threshold`` (the real-valued threshold of the binned split), ``missing_go_to_left``,
  ``count``, ``is_leaf`` and ``is_categorical``; leaf values already include the learning rate.
  Inputs are compared as float64.
- ``IsolationForest``: the mean path length over its trees (:mod:`.isolation`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaudit.adapters.trees.common import (
    Extractor,
    feature_label,
    make_tree,
    names_of,
    one_hot_columns,
    refuse,
    register_extractor,
)
from xaudit.adapters.trees.isolation import extract_isolation
from xaudit.trees import OutputTransform, Tree, TreeEnsemble

FORESTS = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
           "ExtraTreesRegressor")
SINGLE = ("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier",
          "ExtraTreeRegressor")
BOOSTING = ("GradientBoostingClassifier", "GradientBoostingRegressor")
HIST = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
ISOLATION = ("IsolationForest",)
IDENTITY_HIST_LOSSES = ("squared_error", "absolute_error", "quantile")


def unsupported_reason(model: Any) -> str | None:
    """Why ``model`` is not a supported fitted scikit-learn tree model (``None`` if it is)."""
    kind = type(model).__name__
    if kind not in (*FORESTS, *SINGLE, *BOOSTING, *HIST, *ISOLATION):
        return (f"{kind} is not one of the supported scikit-learn tree models "
                f"({', '.join((*SINGLE, *FORESTS, *BOOSTING, *HIST, *ISOLATION))}); a Pipeline "
                "is not a tree model")
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except Exception:
        return f"{kind} is not fitted"
    if kind in (*SINGLE, *FORESTS) and getattr(model, "n_outputs_", 1) > 1 and \
            kind.endswith("Classifier"):
        return f"multi-output {kind} (n_outputs_={model.n_outputs_}) is not supported"
    if kind == "GradientBoostingClassifier" and model.loss != "log_loss":
        return (f"GradientBoostingClassifier with loss={model.loss!r} turns margins into "
                "probabilities by expit(2 * raw), not a logistic or softmax transform; use "
                "loss='log_loss'")
    categorical = getattr(model, "is_categorical_", None)
    if kind in HIST and categorical is not None and np.any(categorical):
        labels = [feature_label(int(i), names_of(model)) for i in np.flatnonzero(categorical)]
        return (f"{', '.join(labels)} is categorical (split by category sets, which "
                "x <= threshold cannot express); encode it (ordinal or one-hot) and fit with "
                "categorical_features=None")
    if kind == "HistGradientBoostingRegressor" and model.loss not in IDENTITY_HIST_LOSSES:
        return (f"HistGradientBoostingRegressor with loss={model.loss!r} predicts "
                "exp(raw); only the identity-link losses "
                f"{', '.join(IDENTITY_HIST_LOSSES)} are supported")
    return None


def extract(model: Any) -> TreeEnsemble:
    """The ensemble of a supported fitted scikit-learn model (see the module docstring)."""
    kind = type(model).__name__
    source = f"scikit-learn {kind}"
    if kind in SINGLE:
        tree = tree_from_sklearn(model.tree_, kind.endswith("Classifier"))
        return TreeEnsemble([tree], np.ones(1), np.zeros(tree.value.shape[1]),
                            int(model.n_features_in_), input_dtype="float32", source=source)
    if kind in FORESTS:
        classifier = kind.endswith("Classifier")
        trees = [tree_from_sklearn(e.tree_, classifier) for e in model.estimators_]
        n = len(trees)
        return TreeEnsemble(trees, np.full(n, 1.0 / n), np.zeros(trees[0].value.shape[1]),
                            int(model.n_features_in_), input_dtype="float32", source=source)
    if kind in BOOSTING:
        return _gradient_boosting(model, source)
    if kind in ISOLATION:
        return extract_isolation(model, source)
    return _hist_gradient_boosting(model, source)


def tree_from_sklearn(tree: Any, classifier: bool) -> Tree:
    """One ``sklearn.tree._tree.Tree``: class fractions (classifier) or per-target values."""
    value = np.asarray(tree.value, dtype=np.float64)  # (n_nodes, n_outputs, max_n_classes)
    value = value[:, 0, :] if classifier else value[:, :, 0]
    return make_tree(tree.children_left, tree.children_right, tree.feature, tree.threshold,
                     tree.missing_go_to_left, value, tree.weighted_n_node_samples)


def _gradient_boosting(model: Any, source: str) -> TreeEnsemble:
    classifier = type(model).__name__.endswith("Classifier")
    stages = np.asarray(model.estimators_, dtype=object)  # (n_estimators_, K)
    n_outputs = stages.shape[1]
    base, init_trees = _init_raw(model, classifier, n_outputs)
    trees = list(init_trees)
    for stage in stages:
        for k, estimator in enumerate(stage):
            single = tree_from_sklearn(estimator.tree_, classifier=False)
            single.value = one_hot_columns(single.value[:, 0], k, n_outputs)
            trees.append(single)
    weights = np.r_[np.ones(len(init_trees)),
                    np.full(len(trees) - len(init_trees), float(model.learning_rate))]
    transform: OutputTransform = (
        "identity" if not classifier else "logistic" if n_outputs == 1 else "softmax")
    init = model.init_
    init_name = init if isinstance(init, str) else type(init).__name__
    return TreeEnsemble(trees, weights, base, int(model.n_features_in_), transform,
                        input_dtype="float32", learning_rate=float(model.learning_rate),
                        source=source, notes={"init": init_name})


def _init_raw(model: Any, classifier: bool, n_outputs: int) -> tuple[np.ndarray, list[Tree]]:
    """The init estimator's raw prediction: a constant base score, or one tree of weight 1."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.tree import BaseDecisionTree

    init = model.init_
    if isinstance(init, str) and init == "zero":
        return np.zeros(n_outputs), []
    if isinstance(init, DummyClassifier | DummyRegressor):
        if isinstance(init, DummyClassifier) and init.strategy in ("uniform", "stratified"):
            raise refuse(model, f"its init estimator DummyClassifier(strategy="
                                f"{init.strategy!r}) predicts at random")
        row = np.zeros((1, int(model.n_features_in_)))
        if classifier:
            return _link(np.asarray(init.predict_proba(row), dtype=np.float64))[0], []
        return np.asarray(init.predict(row), dtype=np.float64).reshape(-1)[:n_outputs], []
    if isinstance(init, BaseDecisionTree) and getattr(init, "n_outputs_", 1) == 1:
        tree = tree_from_sklearn(init.tree_, classifier)
        if classifier:
            tree.value = _link(tree.value)
        return np.zeros(n_outputs), [tree]
    raise refuse(model, f"its init estimator {type(init).__name__} is not representable as "
                        "trees; fit with init=None (the prior), 'zero', a DummyClassifier/"
                        "DummyRegressor or a single DecisionTree")


def _link(proba: np.ndarray) -> np.ndarray:
    """Raw scores of class probabilities as GradientBoostingClassifier's init computes them."""
    eps = np.finfo(np.float64).eps
    if proba.shape[1] == 2:
        p = np.clip(proba[:, 1:], eps, 1 - eps)
        return np.asarray(np.log(p / (1 - p)))
    p = np.clip(proba, eps, 1 - eps)
    log_p = np.log(p)
    return np.asarray(np.log(p / np.exp(log_p.mean(axis=1, keepdims=True))))


def _hist_gradient_boosting(model: Any, source: str) -> TreeEnsemble:
    names = names_of(model)
    predictors = getattr(model, "_predictors", None)
    baseline = getattr(model, "_baseline_prediction", None)
    if predictors is None or baseline is None:
        raise refuse(model, "this scikit-learn version does not expose the fitted predictors "
                            "(_predictors, _baseline_prediction)")
    n_outputs = int(model.n_trees_per_iteration_)
    trees: list[Tree] = []
    for iteration in predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            split = nodes["is_leaf"] == 0
            if np.any(split & (nodes["is_categorical"] != 0)):
                index = int(nodes["feature_idx"][split & (nodes["is_categorical"] != 0)][0])
                raise refuse(model, f"{feature_label(index, names)} has a categorical split")
            trees.append(make_tree(
                np.where(split, nodes["left"].astype(np.int64), -1), nodes["right"],
                nodes["feature_idx"], nodes["num_threshold"], nodes["missing_go_to_left"],
                one_hot_columns(np.where(split, 0.0, nodes["value"]), k, n_outputs),
                nodes["count"].astype(np.float64),
            ))
    transform: OutputTransform = ("identity" if type(model).__name__.endswith("Regressor")
                                  else "logistic" if n_outputs == 1 else "softmax")
    return TreeEnsemble(trees, np.ones(len(trees)), np.asarray(baseline).reshape(-1),
                        int(model.n_features_in_), transform, input_dtype="float64",
                        learning_rate=float(model.learning_rate), source=source)


register_extractor(Extractor("sklearn", unsupported_reason, extract))
