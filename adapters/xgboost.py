"""XGBoost models: ``xgboost.Booster`` and the scikit-learn API (``XGBClassifier``, ...).

Outputs: classifiers give probabilities by default (``predict_proba`` for the scikit-learn API,
one column per class the booster has, named ``class_index_<i>`` beyond the ``classes_`` a
classifier fitted on labels of one class knows; ``Booster.predict`` for a Booster, which is one
column, P(class 1), for ``binary:logistic``); ``output: margin`` gives the untransformed margin
(``output_margin=True``; one column for binary models). Regressors give ``predict``. Rows go to
XGBoost as given, with NaN as the missing value. The model offers the ``tree_ensemble`` capability
(see :mod:`xaudit.adapters.trees.xgboost`). The fingerprint is the SHA-256 of the booster's UBJSON
bytes (``Booster.save_raw("ubj")``). xgboost is imported only when a model is adapted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from xaudit.adapters.estimators import (
    class_names,
    estimator_capabilities,
    estimator_capability_reasons,
)
from xaudit.adapters.hyperparameters import (
    estimator_hyperparameters,
    xgboost_booster_hyperparameters,
)
from xaudit.adapters.trees.boosted import BoostedModel
from xaudit.errors import ModelLoadError
from xaudit.hookspecs import hookimpl
from xaudit.hyperparameters import Hyperparameters
from xaudit.model import InputSpec, Task, default_output_names
from xaudit.plugin import Adapter, AdapterOptions
from xaudit.registry import Registry

CLASSIFIER_OBJECTIVES = ("binary:logistic", "binary:logitraw", "binary:hinge",
                         "multi:softprob", "multi:softmax")
PROBABILITY_OBJECTIVES = ("binary:logistic", "multi:softprob")


class XGBoostOptions(AdapterOptions):
    """Options of the ``xgboost`` adapter."""

    output: Literal["auto", "probability", "margin", "predict"] = "auto"
    """``auto``: probabilities for classifiers, ``predict`` for regressors; ``margin``: the
    untransformed sum of trees and base score."""


@dataclass
class XGBoostModel(BoostedModel):
    """A fitted XGBoost Booster or scikit-learn-API model."""

    def _predict_raw(self, X: np.ndarray) -> Any:
        margin = self.output == "margin"
        if type(self.native).__name__ == "Booster":
            import xgboost

            names = self.native.feature_names
            data = xgboost.DMatrix(X, missing=np.nan, feature_names=names)
            return self.native.predict(data, output_margin=margin)
        rows = self._rows(X)
        if margin:
            return self.native.predict(rows, output_margin=True)
        if self.output == "probability":
            return self.native.predict_proba(rows)
        return self.native.predict(rows)

    def hyperparameters(self) -> Hyperparameters:
        """``get_params`` of a scikit-learn-API model, a Booster's saved configuration."""
        if type(self.native).__name__ == "Booster":
            return xgboost_booster_hyperparameters(self.native)
        return estimator_hyperparameters(self.native, "XGBoost scikit-learn-API model")

    def fingerprint(self) -> str:
        """SHA-256 of the booster's saved UBJSON bytes."""
        booster = self.native if type(self.native).__name__ == "Booster" \
            else self.native.get_booster()
        return hashlib.sha256(bytes(booster.save_raw("ubj"))).hexdigest()



def _is_xgboost(obj: object) -> bool:
    return type(obj).__module__.split(".")[0] == "xgboost"


class XGBoostAdapter(Adapter):
    """XGBoost Boosters and scikit-learn-API models (XGBClassifier, XGBRegressor, ...)."""

    name = "xgboost"
    extra = "xgboost"
    summary = "XGBoost Booster, XGBClassifier, XGBRegressor (tree_ensemble capability)."
    priority = 20
    Options = XGBoostOptions

    @classmethod
    def claims(cls, obj: object) -> bool:
        """Boosters and objects with ``get_booster`` defined in the xgboost package."""
        return _is_xgboost(obj) and (type(obj).__name__ == "Booster" or
                                     hasattr(obj, "get_booster"))

    @classmethod
    def load(cls, obj: object, options: AdapterOptions) -> XGBoostModel:
        """Adapt a fitted Booster or scikit-learn-API model."""
        assert isinstance(options, XGBoostOptions)
        if not cls.claims(obj):
            raise ModelLoadError(f"the xgboost adapter needs an xgboost Booster or "
                                 f"XGBModel, got {type(obj).__name__}")
        import xgboost

        native: Any = obj
        is_booster = type(obj).__name__ == "Booster"
        try:
            booster = native if is_booster else native.get_booster()
        except Exception as exc:
            raise ModelLoadError(f"{type(obj).__name__} is not fitted: {exc}") from None
        objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
        classifier = objective in CLASSIFIER_OBJECTIVES
        output = _output(options.output, objective, is_booster, native)
        names = booster.feature_names
        columns = getattr(native, "feature_names_in_", None) if not is_booster else None
        task: Task = options.task or ("classification" if classifier else "regression")
        return XGBoostModel(
            name=type(obj).__name__,
            adapter=cls.name,
            task=task,
            input_spec=InputSpec((int(booster.num_features()),), "float64", "tabular",
                                 tuple(names) if names else None),
            output_names=_output_names(native, booster, output, is_booster,
                                       options.output_names),
            framework="xgboost",
            framework_version=xgboost.__version__,
            capabilities=estimator_capabilities(obj),
            capability_reasons=estimator_capability_reasons(obj),
            native=native,
            output=output,
            columns=None if columns is None else tuple(str(c) for c in columns),
            categories=options.categories,
        )


def _output(requested: str, objective: str, is_booster: bool, native: Any) -> str:
    if requested == "auto":
        requested = "probability" if objective in PROBABILITY_OBJECTIVES else "predict"
    if requested == "probability" and (objective not in PROBABILITY_OBJECTIVES or (
            not is_booster and not hasattr(native, "predict_proba"))):
        raise ModelLoadError(f"output 'probability' needs a probabilistic classifier; "
                             f"objective {objective!r} does not give probabilities; "
                             "use output 'margin' or 'predict'")
    return requested


def _output_names(native: Any, booster: Any, output: str, is_booster: bool,
                  given: list[str] | None) -> tuple[str, ...]:
    config = json.loads(booster.save_config())["learner"]["learner_model_param"]
    n_class = int(config.get("num_class", "0"))
    n_target = max(int(config.get("num_target", "1")), 1)
    classes = class_names(None if is_booster else getattr(native, "classes_", None), n_class)
    labels: list[str] | None
    if output == "margin":
        labels = ([f"margin({c})" for c in classes] if n_class >= 2
                  else [f"margin({classes[1]})"] if n_target == 1 else None)
        n = n_class if n_class >= 2 else n_target
    elif output == "probability":
        labels = classes if n_class >= 2 or not is_booster else [classes[1]]
        n = len(labels)
    else:
        n = 1 if n_class >= 2 else n_target
        labels = ["prediction"] if n == 1 else None
    if given is not None:
        if len(given) != n:
            raise ModelLoadError(f"output_names has {len(given)} name(s) but the model gives "
                                 f"{n} output(s)")
        return tuple(given)
    return default_output_names(n, labels)


@hookimpl
def xaudit_register_adapters(registry: Registry[Adapter]) -> None:
    """Register the ``xgboost`` adapter."""
    registry.add(XGBoostAdapter)
