"""Held-out metrics by name (computed by scikit-learn), a seeded bootstrap interval, segments.

The model is evaluated on the test split of the suite's data (``data.X_test``, ``data.y_test``).
A regression model's output (one, or the one ``output`` names) is its prediction; a classifier
must give one output per class (class probabilities, the scikit-learn adapter's default), and
each label is matched to its output by name (``str(label)`` among the output names) or, for
integer labels ``0 .. C-1``, by position. Predicted class: the output of largest value.

Bootstrap (Efron and Tibshirani 1993, percentile interval): ``rng.integers(0, n, size=(B, n))``
draws all ``B`` resamples of the ``n`` test rows at once, the metric is computed on each (a
resample on which it is undefined, one class only for ROC AUC, say, is left out and counted),
and the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the finite
values (numpy's default linear interpolation). The overall interval is drawn first, then each
segment's groups in the documentation's order, groups sorted by label, from the same generator.
Regression metrics score all resamples in one scikit-learn call (one column per resample,
``multioutput="raw_values"``); resamples skip scikit-learn's input validation, done once on the
rows they are drawn from.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from xaudit.data import Dataset
from xaudit.errors import InputError
from xaudit.model import Model

Inputs = Literal["labels", "scores", "probabilities", "values"]


@dataclass(frozen=True)
class Metric:
    """A metric by name: what it reads from the model's outputs and how it is defined."""

    key: str
    label: str
    task: Literal["classification", "regression"]
    function: str
    """The function of ``sklearn.metrics`` that computes it."""
    inputs: Inputs
    definition: str


METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("accuracy", "accuracy", "classification", "accuracy_score", "labels",
           "the share of rows whose predicted class is the label"),
    Metric("balanced_accuracy", "balanced accuracy", "classification",
           "balanced_accuracy_score", "labels", "the mean over classes of each class's recall"),
    Metric("f1", "F1", "classification", "f1_score", "labels",
           "the harmonic mean of precision and recall: of the second class for two classes, "
           "averaged over classes (macro) for more"),
    Metric("roc_auc", "ROC AUC", "classification", "roc_auc_score", "scores",
           "the area under the ROC curve of the second class's output for two classes, "
           "one-vs-rest averaged over classes for more"),
    Metric("log_loss", "log loss", "classification", "log_loss", "probabilities",
           "the mean negative log-probability given to the label"),
    Metric("brier", "Brier score", "classification", "brier_score_loss", "probabilities",
           "the mean squared difference between the second class's probability and its "
           "indicator (two classes only)"),
    Metric("r2", "R²", "regression", "r2_score", "values",
           "one minus the residual sum of squares over the total sum of squares"),
    Metric("mae", "MAE", "regression", "mean_absolute_error", "values",
           "the mean absolute error"),
    Metric("rmse", "RMSE", "regression", "root_mean_squared_error", "values",
           "the square root of the mean squared error"),
    Metric("mape", "MAPE", "regression", "mean_absolute_percentage_error", "values",
           "the mean absolute error relative to the label (a fraction, not per cent)"),
)}


@dataclass(frozen=True)
class HeldOut:
    """The test rows, their labels and the model's outputs on them, ready for a metric.

    ``y``: labels (regression) or each label's output column (classification); ``outputs``:
    predictions ``(n,)`` (regression) or one score per class ``(n, C)`` (classification).
    """

    X: np.ndarray
    y: np.ndarray
    outputs: np.ndarray


def sklearn_metrics(name: str) -> Any:
    """``sklearn.metrics``, or an error saying which extra to install."""
    try:
        from sklearn import metrics
    except ImportError:
        raise InputError(f"{name} computes scikit-learn's metrics: pip install "
                         "'xaudit[sklearn]'") from None
    return metrics


def sklearn_config(**settings: Any) -> Any:
    """``sklearn.config_context(**settings)``: resamples of rows already validated skip
    scikit-learn's input and parameter validation, most of a small metric's cost."""
    import sklearn

    return sklearn.config_context(**settings)


def held_out(model: Model, data: Dataset, metric: Metric, output: str | int | None,
             name: str) -> HeldOut:
    """The model's outputs and the labels on the test rows, checked for ``metric``."""
    if data.y is None:
        raise InputError(f"{name} needs the labels of the test rows: name the label column in "
                         "data.target")
    if model.task not in (metric.task, "other"):
        raise InputError(f"{name} is a {metric.task} metric and {model.name} is a "
                         f"{model.task} model; choose a {model.task} metric")
    X, y = data.X_test, np.asarray(data.y_test)
    outputs = model.predict(X)
    if metric.task == "regression":
        return HeldOut(X, y.astype(np.float64), outputs[:, _output(model, output, name)])
    columns = _class_columns(y, model.output_names, name)
    if metric.inputs == "probabilities" or (metric.inputs == "scores" and outputs.shape[1] > 2):
        _require_probabilities(outputs, metric, name)
    if metric.key == "brier" and outputs.shape[1] != 2:
        raise InputError(f"{name} is defined here for two classes; the model has "
                         f"{outputs.shape[1]}")
    return HeldOut(X, columns, outputs)


def _output(model: Model, output: str | int | None, name: str) -> int:
    names = list(model.output_names)
    if output is None:
        if len(names) != 1:
            raise InputError(f"{name}: the model has outputs {', '.join(names)}; say which is "
                             "the prediction with params.output")
        return 0
    if isinstance(output, int):
        if not 0 <= output < len(names):
            raise InputError(f"{name}: output {output} is out of range (0..{len(names) - 1})")
        return output
    if output not in names:
        raise InputError(f"{name}: no output named {output!r}; outputs are {', '.join(names)}")
    return names.index(output)


def _class_columns(y: np.ndarray, output_names: tuple[str, ...], name: str) -> np.ndarray:
    """Each label's output column: by name, or integer labels ``0 .. C-1`` by position."""
    if len(output_names) < 2:
        raise InputError(f"{name} needs one output per class (class probabilities); the model "
                         f"has {len(output_names)} output(s): use the adapter's predict_proba "
                         "output")
    text = [str(v) for v in y.tolist()]
    if all(t in output_names for t in text):
        return np.asarray([output_names.index(t) for t in text], dtype=np.int64)
    numbers = np.asarray(y, dtype=np.float64) if y.dtype.kind in "biuf" else None
    if numbers is not None and np.all(numbers == np.round(numbers)) and np.all(
            (numbers >= 0) & (numbers < len(output_names))):
        return numbers.astype(np.int64)
    unknown = sorted(set(text) - set(output_names))[:5]
    raise InputError(f"{name}: labels {', '.join(unknown)} match no output of the model "
                     f"({', '.join(output_names)}); name the outputs after the classes "
                     "(model.output_names)")


def _require_probabilities(outputs: np.ndarray, metric: Metric, name: str) -> None:
    if np.any(outputs < 0) or np.any(outputs > 1) or not np.allclose(outputs.sum(axis=1), 1.0,
                                                                      atol=1e-6):
        raise InputError(f"{name} ({metric.label}) needs class probabilities, and the model's "
                         "outputs are not (each row must be in [0, 1] and sum to 1): use the "
                         "adapter's predict_proba output")


@dataclass(frozen=True)
class Scorer:
    """A metric as scikit-learn computes it: ``one(y, outputs) -> value`` (see
    :class:`HeldOut` for the arguments) and, for regression metrics, ``columns(Y, P)``: one
    value per column of ``(n, B)`` arrays in a single call (scikit-learn's
    ``multioutput="raw_values"``), the same numbers as ``B`` calls of ``one``."""

    one: Callable[[np.ndarray, np.ndarray], float]
    columns: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


def scorer(metric: Metric, name: str) -> Scorer:
    """The :class:`Scorer` of ``metric``."""
    metrics = sklearn_metrics(name)
    fn = getattr(metrics, metric.function)

    def columns(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
        return np.asarray(fn(Y, P, multioutput="raw_values"), dtype=np.float64)

    def score(y: np.ndarray, outputs: np.ndarray) -> float:
        if metric.inputs == "values":
            return float(fn(y, outputs))
        classes = outputs.shape[1]
        if metric.inputs == "labels":
            predicted = outputs.argmax(axis=1)
            if metric.key == "f1":
                return float(fn(y, predicted, labels=list(range(classes)),
                                average="binary" if classes == 2 else "macro"))
            return float(fn(y, predicted))
        if metric.key == "roc_auc" and classes > 2:
            return float(fn(y, outputs, multi_class="ovr", labels=list(range(classes))))
        if metric.key == "log_loss":
            return float(fn(y, outputs, labels=list(range(classes))))
        return float(fn(y, outputs[:, 1]))  # roc_auc and brier of two classes

    return Scorer(score, columns if metric.inputs == "values" else None)


@dataclass(frozen=True)
class Estimate:
    """A metric on some rows, with its bootstrap interval."""

    value: float
    low: float
    high: float
    rows: int
    failed: int
    """Resamples on which the metric was undefined (left out of the interval)."""


def estimate(score: Scorer, held: HeldOut, rows: np.ndarray, n_boot: int, level: float,
             rng: np.random.Generator) -> Estimate:
    """The metric on ``rows`` of ``held`` and its percentile bootstrap interval (see the module
    docstring for the draws); NaN where undefined."""
    y, outputs = held.y[rows], held.outputs[rows]
    value = _safe(score.one, y, outputs)
    n = int(rows.size)
    draws = rng.integers(0, n, size=(n_boot, n)) if n and n_boot else np.empty((0, n), int)
    with sklearn_config(assume_finite=True, skip_parameter_validation=True):  # checked above
        if score.columns is not None and n > 1 and draws.size:
            boots = _columns(score.columns, y[draws].T, outputs[draws].T)
        else:
            boots = np.array([_safe(score.one, y[i], outputs[i]) for i in draws])
    finite = boots[np.isfinite(boots)]
    low, high = (np.quantile(finite, [(1 - level) / 2, (1 + level) / 2]) if finite.size
                 else (np.nan, np.nan))
    return Estimate(value, float(low), float(high), n, int(boots.size - finite.size))


def _columns(columns: Callable[[np.ndarray, np.ndarray], np.ndarray], Y: np.ndarray,
             P: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant resample: scikit-learn's own convention
        return columns(Y, P)


def _safe(score: Callable[[np.ndarray, np.ndarray], float], y: np.ndarray,
          outputs: np.ndarray) -> float:
    """The metric, NaN where scikit-learn finds it undefined (one class, one row)."""
    if y.size == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined metrics warn and return NaN or raise
        try:
            return score(y, outputs)
        except ValueError:
            return float("nan")
