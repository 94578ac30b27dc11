"""LightGBM boosters as :class:`~xaudit.trees.TreeEnsemble` structures.

Sources: ``Booster.dump_model()`` (LightGBM Python API reference,
https://lightgbm.readthedocs.io/en/stable/pythonapi/lightgbm.Booster.html#lightgbm.Booster.dump_model),
a JSON document with ``objective``, ``num_tree_per_iteration``, ``average_output``,
``feature_names`` and ``tree_info[i].tree_structure``: nested nodes with ``split_feature``,
``threshold``, ``decision_type`` (``<=`` numerical, ``==`` categorical), ``default_left``,
``missing_type`` (``None``, ``Zero``, ``NaN``), ``internal_count``; leaves with ``leaf_value`` and
``leaf_count``. Tree ``i`` feeds output ``i % num_tree_per_iteration``; leaf values already
include the shrinkage, and with ``boost_from_average`` the initial score is folded into the first
trees, so the base score is 0 (an ``init_score`` given to a ``Dataset`` is not part of the model;
``predict`` never adds it). Like ``Booster.predict``, the dump uses the best iteration when
early stopping recorded one. With ``average_output`` (``boosting="rf"``) LightGBM's prediction
transforms the mean of the trees' outputs, while ``raw_score=True`` returns their sum; the
ensemble's raw output here is the mean (weights ``1 / rounds``), so that ``transform(raw)``
equals ``predict`` (and ``raw`` is ``raw_score / rounds``).

Numerical decisions (LightGBM ``include/LightGBM/tree.h``, ``NumericalDecision``), on float64
inputs: with ``missing_type`` ``NaN``, a NaN goes to the default side; otherwise a NaN is read as
0.0; with ``Zero``, values in [-1e-35, 1e-35] (and so NaN) go to the default side; then a row
goes left when ``x <= threshold``. ``None`` is therefore "NaN goes where 0.0 goes"; ``Zero`` is
representable when the default side is the side 0.0 goes to anyway. Before any of this, dense
rows are made sparse (``src/c_api.cpp``, ``RowFunctionFromDenseMatric``): values with
``|x| <= kZeroThreshold`` (1e-35 in float32) are dropped and read as 0.0, so a threshold inside
that band is moved to where it sends all of the band as it sends 0.0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaudit.adapters.trees.common import (
    Extractor,
    feature_label,
    make_tree,
    one_hot_columns,
    refuse,
    register_extractor,
)
from xaudit.trees import OutputTransform, Tree, TreeEnsemble

ZERO_THRESHOLD = float(np.float32(1e-35))
IDENTITY_OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")


def booster_of(model: Any) -> Any:
    """The ``lightgbm.Booster`` of a Booster or of a fitted scikit-learn-API model."""
    return model if type(model).__name__ == "Booster" else model.booster_


def _transform(objective: str) -> tuple[OutputTransform | None, str]:
    """The output transform of a dumped objective string, or ``None`` and why not."""
    name, *params = objective.split()
    if name == "binary":
        sigmoid = dict(p.split(":", 1) for p in params if ":" in p).get("sigmoid", "1")
        if float(sigmoid) != 1.0:
            return None, (f"objective 'binary' with sigmoid={sigmoid} gives probabilities "
                          f"expit({sigmoid} * raw); only sigmoid=1 is supported")
        return "logistic", ""
    if name == "multiclass":
        return "softmax", ""
    if name in IDENTITY_OBJECTIVES and "sqrt" in params:
        return None, (f"objective {name!r} with reg_sqrt=True predicts sign(raw) * raw^2; "
                      "fit with reg_sqrt=False")
    if name in IDENTITY_OBJECTIVES:
        return "identity", ""
    why = (": it predicts exp(raw), a log link the tree structure's output transforms "
           "(identity, logistic, softmax) do not include"
           if name in ("poisson", "gamma", "tweedie") else "")
    return None, (f"objective {name!r} is not supported{why}; supported: binary, multiclass, "
                  f"{', '.join(IDENTITY_OBJECTIVES)}")


def unsupported_reason(model: Any) -> str | None:
    """Why ``model`` is not a supported fitted LightGBM tree model (``None`` if it is)."""
    kind = type(model).__name__
    if kind != "Booster" and not hasattr(model, "booster_"):
        return f"{kind} is not a LightGBM Booster or scikit-learn-API model"
    try:
        booster = booster_of(model)
    except Exception as exc:
        return f"{kind} is not fitted ({exc})"
    params = getattr(booster, "params", {}) or {}
    if params.get("linear_tree"):
        return "linear trees (linear_tree=True) have linear models in their leaves"
    objective = params.get("objective")
    if callable(objective) or objective in UNSUPPORTED_OBJECTIVES:
        return _transform(objective if isinstance(objective, str) else "custom")[1]
    if params.get("reg_sqrt"):
        return _transform(f"{objective} sqrt")[1]
    if objective in ("binary", "binary_logloss") and float(params.get("sigmoid", 1.0)) != 1.0:
        return _transform(f"binary sigmoid:{params['sigmoid']}")[1]
    return None


UNSUPPORTED_OBJECTIVES = frozenset({
    "poisson", "gamma", "tweedie", "cross_entropy", "xentropy", "cross_entropy_lambda",
    "xentlambda", "multiclassova", "multiclass_ova", "ova", "ovr", "lambdarank", "rank_xendcg",
    "xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart", "custom", "none",
})
"""Objective names (and aliases) refused before extraction; the dump's canonical objective
decides for every other name."""


def extract(model: Any) -> TreeEnsemble:
    """The ensemble of a supported fitted LightGBM model; its raw output is ``raw_score``."""
    booster = booster_of(model)
    dump = booster.dump_model()
    transform, reason = _transform(dump["objective"])
    if transform is None:
        raise refuse(model, reason)
    names = dump.get("feature_names")
    n_outputs = int(dump["num_tree_per_iteration"])
    trees = [_tree(model, info["tree_structure"], i % n_outputs, n_outputs, names)
             for i, info in enumerate(dump["tree_info"])]
    rounds = max(len(trees) // n_outputs, 1)
    weight = 1.0 / rounds if dump.get("average_output") else 1.0
    return TreeEnsemble(
        trees, np.full(len(trees), weight), np.zeros(n_outputs),
        int(dump["max_feature_idx"]) + 1, transform,
        input_dtype="float64", source=f"LightGBM {type(model).__name__} ({dump['objective']})",
        notes={"objective": dump["objective"], "rounds": str(rounds)},
    )


def _tree(model: Any, root: dict[str, Any], output: int, n_outputs: int,
          names: list[str] | None) -> Tree:
    left: list[int] = []
    right: list[int] = []
    feature: list[int] = []
    threshold: list[float] = []
    missing_left: list[bool] = []
    value: list[float] = []
    cover: list[float] = []
    stack: list[tuple[dict[str, Any], int, bool]] = [(root, -1, False)]
    while stack:  # pre-order: a node is numbered before its children
        node, parent, is_left = stack.pop()
        index = len(left)
        if parent >= 0:
            (left if is_left else right)[parent] = index
        left.append(-1)
        right.append(-1)
        if "split_feature" not in node:
            feature.append(-1)
            threshold.append(0.0)
            missing_left.append(False)
            value.append(float(node["leaf_value"]))
            cover.append(float(node.get("leaf_count", 0)))
            if "leaf_coeff" in node:
                raise refuse(model, "linear trees have linear models in their leaves")
            continue
        split = int(node["split_feature"])
        if node["decision_type"] != "<=":
            raise refuse(model, f"{feature_label(split, names)} has a categorical split "
                                f"(decision_type {node['decision_type']!r}), which "
                                "x <= threshold cannot express; encode it before training")
        cut = _snap(float(node["threshold"]))
        feature.append(split)
        threshold.append(cut)
        missing_left.append(_missing_left(model, node, cut, split, names))
        value.append(0.0)
        cover.append(float(node.get("internal_count", 0)))
        stack.append((node["right_child"], index, False))
        stack.append((node["left_child"], index, True))
    return make_tree(np.asarray(left), np.asarray(right), np.asarray(feature),
                     np.asarray(threshold), np.asarray(missing_left),
                     one_hot_columns(np.asarray(value), output, n_outputs), np.asarray(cover))


def _snap(cut: float) -> float:
    """A threshold that treats every ``|x| <= kZeroThreshold`` as LightGBM does: as 0.0."""
    if abs(cut) > ZERO_THRESHOLD:
        return cut
    return ZERO_THRESHOLD if cut >= 0.0 else float(np.nextafter(-ZERO_THRESHOLD, -np.inf))


def _missing_left(model: Any, node: dict[str, Any], cut: float, split: int,
                  names: list[str] | None) -> bool:
    missing_type = node.get("missing_type", "None")
    default_left = bool(node.get("default_left", False))
    if missing_type == "NaN":
        return default_left
    if missing_type == "None":
        return cut >= 0.0  # a NaN is read as 0.0
    # "Zero": zeros and NaN go to the default side; fine when 0 goes there by comparison too.
    if (default_left and cut >= ZERO_THRESHOLD) or (not default_left and cut < -ZERO_THRESHOLD):
        return default_left
    raise refuse(model, f"{feature_label(split, names)} treats zero as missing "
                        f"(zero_as_missing) at threshold {cut!r}, sending zeros "
                        f"{'left' if default_left else 'right'} against the comparison; "
                        "fit with zero_as_missing=False")


register_extractor(Extractor("lightgbm", unsupported_reason, extract))
