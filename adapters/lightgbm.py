"""LightGBM models: ``lightgbm.Booster`` and the scikit-learn API (``LGBMClassifier``, ...).

Outputs: classifiers give probabilities by default (``predict_proba`` for the scikit-learn API,
one column per class the booster has, counted from the booster, not from the training labels: a
classifier fitted on labels of one class still gives two columns, or ``num_class``, named
``class_index_<i>`` beyond its ``classes_``; ``Booster.predict`` for a Booster, which is one
column, P(class 1), for the ``binary`` objective); ``output: margin`` gives the raw score
(``raw_score=True``; one column for binary models). Regressors give ``predict``. Predictions use
the best iteration when early stopping recorded one, as LightGBM's own ``predict`` does. The model
offers the ``tree_ensemble`` capability (see :mod:`xaudit.adapters.trees.lightgbm`). The
fingerprint is the SHA-256 of the booster's saved model text (``Booster.model_to_string()``).
lightgbm is imported only when a model is adapted.
"""

from __future__ import annotations

import hashlib
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
    lightgbm_booster_hyperparameters,
)
from xaudit.adapters.trees.boosted import BoostedModel
from xaudit.errors import ModelLoadError
from xaudit.hookspecs import hookimpl
from xaudit.hyperparameters import Hyperparameters
from xaudit.model import InputSpec, Task, default_output_names
from xaudit.plugin import Adapter, AdapterOptions
from xaudit.registry import Registry

PROBABILITY_OBJECTIVES = ("binary", "multiclass", "multiclassova", "cross_entropy")
CLASSIFIER_OBJECTIVES = ("binary", "multiclass", "multiclassova")


class LightGBMOptions(AdapterOptions):
    """Options of the ``lightgbm`` adapter."""

    output: Literal["auto", "probability", "margin", "predict"] = "auto"
    """``auto``: probabilities for classifiers, ``predict`` for regressors; ``margin``: the
    raw score (sum of the trees' leaf values)."""


@dataclass
class LightGBMModel(BoostedModel):
    """A fitted LightGBM Booster or scikit-learn-API model."""

    def _predict_raw(self, X: np.ndarray) -> Any:
        margin = self.output == "margin"
        if type(self.native).__name__ == "Booster":
            return self.native.predict(X, raw_score=margin)
        rows = self._rows(X)
        if margin:
            return self.native.predict(rows, raw_score=True)
        if self.output == "probability":
            return self.native.predict_proba(rows)
        return self.native.predict(rows)

    def hyperparameters(self) -> Hyperparameters:
        """``get_params`` of a scikit-learn-API model, a Booster's params and header."""
        if type(self.native).__name__ == "Booster":
            return lightgbm_booster_hyperparameters(self.native, _header(self.native))
        return estimator_hyperparameters(self.native, "LightGBM scikit-learn-API model")

    def fingerprint(self) -> str:
        """SHA-256 of the booster's saved model text."""
        return hashlib.sha256(_booster(self.native).model_to_string().encode()).hexdigest()



def _booster(native: Any) -> Any:
    return native if type(native).__name__ == "Booster" else native.booster_


def _header(booster: Any) -> dict[str, str]:
    """``key=value`` lines of the saved model's header (objective, num_class, ...)."""
    text = booster.model_to_string(num_iteration=1)
    header = text.split("\nTree=", 1)[0]
    return dict(line.split("=", 1) for line in header.splitlines() if "=" in line)


class LightGBMAdapter(Adapter):
    """LightGBM Boosters and scikit-learn-API models (LGBMClassifier, LGBMRegressor, ...)."""

    name = "lightgbm"
    extra = "lightgbm"
    summary = "LightGBM Booster, LGBMClassifier, LGBMRegressor (tree_ensemble capability)."
    priority = 20
    Options = LightGBMOptions

    @classmethod
    def claims(cls, obj: object) -> bool:
        """Boosters and scikit-learn-API models defined in the lightgbm package."""
        is_lightgbm = type(obj).__module__.split(".")[0] == "lightgbm"
        return is_lightgbm and (type(obj).__name__ == "Booster" or hasattr(obj, "booster_")
                                or hasattr(obj, "fit"))

    @classmethod
    def load(cls, obj: object, options: AdapterOptions) -> LightGBMModel:
        """Adapt a fitted Booster or scikit-learn-API model."""
        assert isinstance(options, LightGBMOptions)
        if not cls.claims(obj):
            raise ModelLoadError(f"the lightgbm adapter needs a lightgbm Booster or "
                                 f"LGBMModel, got {type(obj).__name__}")
        import lightgbm

        native: Any = obj
        is_booster = type(obj).__name__ == "Booster"
        try:
            booster = _booster(native)
        except Exception as exc:
            raise ModelLoadError(f"{type(obj).__name__} is not fitted: {exc}") from None
        header = _header(booster)
        objective = header.get("objective", "").split(" ")[0]
        n_per_round = int(header.get("num_tree_per_iteration", "1"))
        probabilistic = objective in PROBABILITY_OBJECTIVES and (
            is_booster or hasattr(native, "predict_proba"))
        output = options.output
        if output == "auto":
            output = "probability" if probabilistic else "predict"
        if output == "probability" and not probabilistic:
            raise ModelLoadError(f"output 'probability' needs a probabilistic classifier; "
                                 f"objective {objective!r} does not give probabilities; use "
                                 "output 'margin' or 'predict'")
        classifier = objective in CLASSIFIER_OBJECTIVES
        names = [str(n) for n in booster.feature_name()]
        columns = getattr(native, "feature_names_in_", None) if not is_booster else None
        task: Task = options.task or ("classification" if classifier else "regression")
        return LightGBMModel(
            name=type(obj).__name__,
            adapter=cls.name,
            task=task,
            input_spec=InputSpec((int(booster.num_feature()),), "float64", "tabular",
                                 tuple(names)),
            output_names=_output_names(native, is_booster, output, n_per_round, objective,
                                       options.output_names),
            framework="lightgbm",
            framework_version=lightgbm.__version__,
            capabilities=estimator_capabilities(obj),
            capability_reasons=estimator_capability_reasons(obj),
            native=native,
            output=output,
            columns=None if columns is None else tuple(str(c) for c in columns),
            categories=options.categories,
        )


def _output_names(native: Any, is_booster: bool, output: str, n_per_round: int,
                  objective: str, given: list[str] | None) -> tuple[str, ...]:
    classes = class_names(None if is_booster else getattr(native, "classes_", None),
                          n_per_round)
    labels: list[str] | None
    if output == "margin":
        labels = ([f"margin({c})" for c in classes] if n_per_round > 1
                  else [f"margin({classes[1]})"] if objective in CLASSIFIER_OBJECTIVES
                  else ["margin"])
    elif output == "probability":
        labels = classes if n_per_round > 1 or not is_booster else [classes[1]]
    elif objective in CLASSIFIER_OBJECTIVES and not is_booster:
        labels = ["prediction"]
    else:
        labels = ["prediction"] if n_per_round == 1 else None
    n = len(labels) if labels is not None else n_per_round
    if given is not None:
        if len(given) != n:
            raise ModelLoadError(f"output_names has {len(given)} name(s) but the model gives "
                                 f"{n} output(s) (its booster has {n_per_round} tree(s) per "
                                 f"iteration, objective {objective!r})")
        return tuple(given)
    return default_output_names(n, labels)


@hookimpl
def xaudit_register_adapters(registry: Registry[Adapter]) -> None:
    """Register the ``lightgbm`` adapter."""
    registry.add(LightGBMAdapter)
