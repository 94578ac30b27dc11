"""Permutation feature importance: how much a score drops when one feature's column is shuffled.

For a score ``s`` (higher is better), labelled rows ``(X, y)`` and feature ``j``, repeat ``r``
shuffles column ``j`` of ``X`` (breaking its link with ``y`` and the other features) and records
``s(f(X), y) - s(f(X with column j permuted), y)``. The importance is the mean over ``n_repeats``
shuffles and its spread the standard deviation (Breiman, 2001, "Random Forests", Machine Learning
45; Fisher, Rudin and Dominici, 2019, "All Models are Wrong, but Many are Useful", JMLR 20,
model reliance).

The shuffling and scoring are scikit-learn's (``sklearn.inspection.permutation_importance``,
imported lazily): the adapted model is handed to it behind a small estimator facade whose
``predict``, ``predict_proba`` and ``decision_function`` read the model's outputs, so every
scikit-learn scorer name works for any model, not only scikit-learn ones.

Result schema: a *global* explanation (``handoff.kind == "global"``). Row ``r`` of
``values`` ``(n_repeats, d, 1)`` holds the importances of repeat ``r``; the one output slot is
named after the metric. ``metadata`` also holds the baseline score and per-feature mean and
standard deviation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_serializer

from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.registry import Registry
from xaudit.targets import TargetSelection

Metric = Callable[[np.ndarray, np.ndarray], float]


class PermutationImportanceParams(PluginParams):
    """Parameters of ``permutation_importance``."""

    metric: str | Metric | None = None
    """A scikit-learn scorer name (``r2``, ``neg_mean_squared_error``, ``accuracy``,
    ``roc_auc``, ``neg_log_loss``, ...) or, from Python, a callable ``metric(y_true, outputs)``
    returning a score where higher is better (``outputs`` are the targeted model outputs,
    ``(n,)`` for one). Default: ``accuracy`` for classifiers, ``r2`` otherwise."""
    n_repeats: int = Field(5, gt=0, le=1_000)
    """Shuffles per feature; rows of the result."""
    max_samples: float = Field(1.0, gt=0.0, le=1.0)
    """Fraction of the explained rows drawn (without replacement) for each repeat."""

    @field_serializer("metric")
    def _metric_name(self, metric: str | Metric | None) -> str | None:
        if metric is None or isinstance(metric, str):
            return metric
        return str(getattr(metric, "__qualname__", None) or repr(metric))


class PermutationImportance(Explainer):
    """Drop in a score when one feature is shuffled, repeated; rows are the repeats."""

    name = "permutation_importance"
    summary = "Permutation feature importance (score drop when a feature is shuffled)."
    description = (
        "For a score where higher is better and labelled rows, each feature's column is shuffled "
        "n_repeats times, which breaks its link with the label and with the other features; the "
        "importance is the fall of the score from the unshuffled rows. Each repeat is one row of "
        "the result: a measurement over all rows together, not an explanation of any one row.")
    paper = ("Breiman 2001, Random Forests; Fisher, Rudin and Dominici 2019, All Models are "
             "Wrong, but Many are Useful (model reliance)")
    limitations = (
        "Shuffling a feature independently of correlated ones creates unrealistic rows; "
        "correlated features share (and can hide) each other's importance.",
        "Measures reliance of this model on this data for this metric, not the feature's "
        "importance for the outcome in the population.",
        "A global measurement: it says nothing about individual rows.",
    )
    Params = PermutationImportanceParams
    params: PermutationImportanceParams
    stochastic = True
    needs_labels = True
    conformance_opt_outs: ClassVar[Mapping[str, str]] = {
        "targets_select_output_slots": (
            "a global measurement: its one output slot is the score of all targeted outputs "
            "against the labels, so a single target changes what is scored instead of "
            "selecting a slot"),
    }

    def explain(
        self,
        model: Model,
        X: np.ndarray,
        *,
        background: np.ndarray | None,
        targets: TargetSelection,
        rng: np.random.Generator,
        y: np.ndarray | None = None,
    ) -> Attribution:
        """Importances ``(n_repeats, d, 1)`` of a global measurement over the rows of ``X``."""
        from sklearn.inspection import permutation_importance
        from sklearn.metrics import check_scoring

        if y is None:
            raise InputError("permutation_importance needs the labels of the explained rows")
        if X.ndim != 2:
            raise InputError(f"permutation_importance needs tabular rows (n, d), got {X.shape}")
        params = self.params
        classifier = model.task == "classification"
        estimator, labels = facade(model, targets, np.asarray(y), classifier)
        metric = params.metric if params.metric is not None else (
            "accuracy" if classifier else "r2")
        scoring: Any = metric
        label = metric if isinstance(metric, str) else self.params.model_dump(mode="json")[
            "metric"]
        if callable(metric):
            labels = np.asarray(y)  # a callable metric sees the labels as given

            def scoring(est: Any, rows: np.ndarray, truth: np.ndarray) -> float:
                return float(metric(truth, est.outputs(rows)))
        seed = int(rng.integers(0, 2**31 - 1))
        try:
            scorer = check_scoring(estimator, scoring)
            baseline = float(scorer(estimator, X, labels))
            result = permutation_importance(
                estimator, X, labels, scoring=scorer, n_repeats=params.n_repeats,
                random_state=seed, max_samples=params.max_samples)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"permutation_importance with metric {label!r}: {exc}") from exc
        importances = np.asarray(result.importances, dtype=np.float64)  # (d, n_repeats)
        return Attribution(
            values=importances.T[:, :, None],
            handoff=Handoff(kind="global", marginal=True),
            metadata={
                "output_names": [f"{label}"],
                "metric": label,
                "baseline_score": baseline,
                "n_repeats": params.n_repeats,
                "importances_mean": result.importances_mean.tolist(),
                "importances_std": result.importances_std.tolist(),
                "random_state": seed,
                "n_rows": int(X.shape[0]),
            },
        )


def facade(model: Model, targets: TargetSelection, y: np.ndarray,
           classifier: bool) -> tuple[Any, np.ndarray]:
    """A scikit-learn estimator reading ``model``'s outputs, and the labels it scores against.

    Classifiers: the outputs are class scores, one per class named by ``model.output_names``
    (a single output is the positive class's probability); labels must be those names (or
    their string forms) or class positions ``0..m-1``. Regressors: ``predict`` gives the
    targeted outputs (one column is returned as ``(n,)``).
    """
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    names = tuple(model.output_names)
    if classifier:
        classes, labels = _classes(names, y)
        mixin: type = ClassifierMixin
    else:
        classes, labels = None, y
        mixin = RegressorMixin
    columns = targets.indices[0]

    class ModelEstimator(mixin, BaseEstimator):  # type: ignore[misc]
        """The adapted model as a fitted scikit-learn estimator (scoring only)."""

        def __init__(self) -> None:
            self.classes_ = classes
            self.n_features_in_ = model.input_spec.feature_shape[0]

        def fit(self, X: Any, y: Any = None) -> Any:
            return self

        def __sklearn_is_fitted__(self) -> bool:
            return True

        def outputs(self, X: Any) -> np.ndarray:
            out = model.predict(np.asarray(X))
            if not classifier:
                out = out[:, columns]
            return np.asarray(out[:, 0] if out.shape[1] == 1 else out)

        def predict(self, X: Any) -> np.ndarray:
            if not classifier:
                return self.outputs(X)
            return np.asarray(np.asarray(self.classes_)[np.argmax(self.predict_proba(X), axis=1)])

        def predict_proba(self, X: Any) -> np.ndarray:
            out = model.predict(np.asarray(X))
            return np.column_stack([1.0 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out

        def decision_function(self, X: Any) -> np.ndarray:
            out = model.predict(np.asarray(X))
            return out[:, -1] if out.shape[1] <= 2 else out

    return ModelEstimator(), labels


def _classes(names: tuple[str, ...], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class labels in output order and ``y`` expressed in them."""
    n_classes = max(len(names), 2)
    as_text = y.astype(str)
    if len(names) >= 2 and set(as_text.tolist()) <= set(names):
        return np.asarray(names), as_text
    values = np.unique(y)
    if np.issubdtype(values.dtype, np.number) and np.all(np.mod(values, 1) == 0) and \
            values.min() >= 0 and values.max() < n_classes:
        return np.arange(n_classes), y.astype(np.int64)
    raise InputError(
        f"labels {values[:5].tolist()} do not name the model's outputs "
        f"({', '.join(names)}) and are not class positions 0..{n_classes - 1}"
    )


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``permutation_importance``."""
    registry.add(PermutationImportance)
