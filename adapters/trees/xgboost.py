"""XGBoost boosters as :class:`~xaudit.trees.TreeEnsemble` structures.

Sources: XGBoost's JSON model format (``Booster.save_raw("json")``), described by the schema
``doc/model.schema`` (https://github.com/dmlc/xgboost/blob/master/doc/model.schema) and
"Introduction to Model IO" (https://xgboost.readthedocs.io/en/stable/tutorials/saving_model.html):
per tree ``left_children``/``right_children`` (``-1`` at leaves), ``split_indices``,
``split_conditions`` (the leaf value at a leaf), ``default_left``, ``split_type`` (1 =
categorical), ``sum_hessian`` (the cover); ``tree_info`` gives the output group of each tree and
``iteration_indptr`` the trees of each boosting round. A row goes left when its float32 feature
value is ``< split_condition`` (float32), so the threshold here is the next float32 below the
condition, ``np.nextafter(c, -inf)``, which makes ``x <= threshold`` the same test. Missing values
follow ``default_left``. XGBoost sums leaf values in float32 from the base margin, tree by tree,
so the ensemble accumulates in float32 too.

The base margin is the intercept ``base_score`` after the objective's link ("Intercept" tutorial,
https://xgboost.readthedocs.io/en/stable/tutorials/intercept.html): logit for the logistic
objectives, identity otherwise. It is read back exactly as XGBoost computes it, by predicting the
margin of the same model with its trees removed.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from xaudit.adapters.trees.common import (
    Extractor,
    feature_label,
    make_tree,
    one_hot_columns,
    preorder,
    refuse,
    register_extractor,
    renumber,
)
from xaudit.trees import OutputTransform, Tree, TreeEnsemble

TRANSFORMS: dict[str, OutputTransform] = {
    "binary:logistic": "logistic",
    "reg:logistic": "logistic",
    "multi:softprob": "softmax",
    "multi:softmax": "softmax",
    "binary:logitraw": "identity",
    "reg:squarederror": "identity",
    "reg:absoluteerror": "identity",
    "reg:pseudohubererror": "identity",
    "reg:quantileerror": "identity",
}


LOG_LINK = ("reg:tweedie", "count:poisson", "reg:gamma", "survival:cox", "survival:aft")
"""Objectives whose prediction is ``exp(margin)``."""


def booster_of(model: Any) -> Any:
    """The ``xgboost.Booster`` of a Booster or of a fitted scikit-learn-API model."""
    return model if type(model).__name__ == "Booster" else model.get_booster()


def iteration_limit(model: Any) -> int | None:
    """Rounds the model predicts with: the scikit-learn API uses ``best_iteration + 1`` after
    early stopping (``XGBModel.predict``'s ``iteration_range`` default); a Booster uses all."""
    if type(model).__name__ == "Booster":
        return None
    try:
        return int(model.best_iteration) + 1
    except AttributeError:
        return None


def unsupported_reason(model: Any) -> str | None:
    """Why ``model`` is not a supported fitted XGBoost tree model (``None`` if it is)."""
    kind = type(model).__name__
    if kind != "Booster" and not hasattr(model, "get_booster"):
        return f"{kind} is not an XGBoost Booster or scikit-learn-API model"
    try:
        booster = booster_of(model)
    except Exception as exc:
        return f"{kind} is not fitted ({exc})"
    missing = getattr(model, "missing", math.nan)
    if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
        return (f"{kind} treats {missing!r} as missing, which x <= threshold cannot express; "
                "use missing=np.nan")
    types = booster.feature_types or []
    if "c" in types:
        labels = [feature_label(i, booster.feature_names) for i, t in enumerate(types)
                  if t == "c"]
        return (f"{', '.join(labels)} is categorical (enable_categorical: split by category "
                "sets, which x <= threshold cannot express); encode it before training")
    learner = json.loads(booster.save_config())["learner"]
    name = learner["gradient_booster"]["name"]
    if name != "gbtree":
        why = ("it scales each tree by a dropout weight (weight_drop) that is not read here"
               if name == "dart" else "it is not made of trees" if name == "gblinear" else
               "it is not a known tree booster")
        return f"booster {name!r} is not supported: {why}; train with booster='gbtree'"
    objective = learner["objective"]["name"]
    if objective not in TRANSFORMS:
        why = (": it predicts exp(margin), a log link the tree structure's output "
               "transforms (identity, logistic, softmax) do not include" if objective in LOG_LINK
               else "")
        return (f"objective {objective!r} is not supported{why}; supported objectives: "
                f"{', '.join(TRANSFORMS)}")
    return None


def extract(model: Any) -> TreeEnsemble:
    """The ensemble of a supported fitted XGBoost model; its raw output is the margin."""
    booster = booster_of(model)
    document = json.loads(bytes(booster.save_raw("json")))
    learner = document["learner"]
    trees_json = learner["gradient_booster"]["model"]["trees"]
    tree_info = learner["gradient_booster"]["model"]["tree_info"]
    limit = iteration_limit(model)
    if limit is not None:
        model_json = learner["gradient_booster"]["model"]
        indptr = model_json.get("iteration_indptr")
        if indptr is None:  # written since XGBoost 2.0; before, every round had equal size
            per_round = int(model_json["gbtree_model_param"]["num_parallel_tree"]) * (
                max(tree_info, default=0) + 1)
            indptr = list(range(0, len(trees_json) + per_round, per_round))
        end = indptr[min(limit, len(indptr) - 1)]
        trees_json, tree_info = trees_json[:end], tree_info[:end]
    names = booster.feature_names
    base = base_margin(document)
    n_outputs = base.shape[0]
    trees = [_tree(model, t, int(group), n_outputs, names)
             for t, group in zip(trees_json, tree_info, strict=True)]
    objective = learner["objective"]["name"]
    return TreeEnsemble(
        trees, np.ones(len(trees)), base, int(learner["learner_model_param"]["num_feature"]),
        TRANSFORMS[objective], input_dtype="float32", accumulate_dtype="float32",
        source=f"XGBoost {type(model).__name__} ({objective})",
        notes={"objective": objective, "rounds": str(limit or "all")},
    )


def base_margin(document: dict[str, Any]) -> np.ndarray:
    """The float32 base margin, predicted by XGBoost from the model with its trees removed."""
    import xgboost

    empty = json.loads(json.dumps(document))
    model = empty["learner"]["gradient_booster"]["model"]
    model["trees"], model["tree_info"], model["iteration_indptr"] = [], [], [0]
    model["gbtree_model_param"]["num_trees"] = "0"
    # An empty model with boost_from_average would be taken as untrained and its intercept
    # returned without the link; the intercept is already estimated, so switch that off.
    empty["learner"]["learner_model_param"]["boost_from_average"] = "0"
    booster = xgboost.Booster(model_file=bytearray(json.dumps(empty).encode()))
    n_features = int(empty["learner"]["learner_model_param"]["num_feature"])
    row = xgboost.DMatrix(np.zeros((1, n_features), dtype=np.float32), missing=np.nan)
    margin = booster.predict(row, output_margin=True, validate_features=False)
    return np.asarray(margin, dtype=np.float32).reshape(-1).astype(np.float64)


def _tree(model: Any, tree: dict[str, Any], group: int, n_outputs: int,
          names: list[str] | None) -> Tree:
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise refuse(model, "it has multi-output trees (multi_strategy='multi_output_tree'); "
                            "fit with multi_strategy='one_output_per_tree'")
    left = np.asarray(tree["left_children"], dtype=np.int64)
    right = np.asarray(tree["right_children"], dtype=np.int64)
    feature = np.asarray(tree["split_indices"], dtype=np.int64)
    condition = np.asarray(tree["split_conditions"], dtype=np.float32)
    split = left != -1
    categorical = split & (np.asarray(tree["split_type"], dtype=np.int64) == 1)
    if np.any(categorical):
        index = int(feature[categorical][0])
        raise refuse(model, f"{feature_label(index, names)} has a categorical split "
                            "(enable_categorical), which x <= threshold cannot express; "
                            "encode it (ordinal or one-hot) before training")
    threshold = np.nextafter(condition, np.float32(-np.inf)).astype(np.float64)
    leaf_value = np.where(split, 0.0, condition.astype(np.float64))
    order = preorder(left, right)
    left, right, feature, threshold, missing, value, cover = renumber(
        order, feature, threshold, np.asarray(tree["default_left"], dtype=bool), leaf_value,
        np.asarray(tree["sum_hessian"], dtype=np.float64), left=left, right=right,
    )
    return make_tree(left, right, feature, threshold, missing,
                     one_hot_columns(value, group, n_outputs), cover)


register_extractor(Extractor("xgboost", unsupported_reason, extract))
