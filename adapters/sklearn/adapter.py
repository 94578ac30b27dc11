"""scikit-learn estimators and Pipelines (and estimators following its API).

Classifiers give class probabilities (``predict_proba``) by default, one output per class;
``output: decision_function`` gives margins. Regressors give ``predict``, one output per target.
An ``IsolationForest`` gives its mean path length (``output: path_length``, the quantity its
anomaly score is a decreasing function of, and the one shap explains).
When the estimator was fitted on a DataFrame, rows are passed back as a DataFrame with the same
column names, so Pipelines with a ColumnTransformer see the columns they expect.

Files: ``.skops`` loads through skops' safe loader, refusing types it does not trust unless
``trust: true``; ``.pkl``, ``.pickle`` and ``.joblib`` can run arbitrary code when loaded and are
refused unless ``trust: true``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from xaudit.adapters.estimators import (
    estimator_capabilities,
    estimator_capability_reasons,
    estimator_randomizations,
    estimator_randomized,
    refit_clone,
)
from xaudit.adapters.fingerprint import file_sha256, state_sha256
from xaudit.adapters.frames import to_frame
from xaudit.adapters.hyperparameters import estimator_hyperparameters
from xaudit.adapters.trees.extract import extract_tree_ensemble
from xaudit.adapters.trees.isolation import mean_path_length
from xaudit.errors import ModelLoadError
from xaudit.hookspecs import hookimpl
from xaudit.hyperparameters import Hyperparameters
from xaudit.model import InputSpec, ModelBase, Task, default_output_names
from xaudit.plugin import Adapter, AdapterOptions
from xaudit.randomization import Randomization, RandomizedStage
from xaudit.registry import Registry
from xaudit.trees import TreeEnsemble

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
SKOPS_SUFFIX = ".skops"
Output = Literal["auto", "predict_proba", "log_odds", "decision_function", "predict",
                 "path_length"]
PATH_LENGTH = "path_length"


class SklearnOptions(AdapterOptions):
    """Options of the ``sklearn`` adapter."""

    output: Output = "auto"
    """``auto``: probabilities for classifiers, the mean path length for an
    ``IsolationForest``, ``predict`` otherwise; ``log_odds``: ``log(p / (1 - p))`` of each class
    probability, probabilities clipped to [1e-15, 1-1e-15]; ``path_length``: an
    IsolationForest's mean path length over its trees, ``E[h(x)]`` (Liu et al. 2008; shorter
    is more anomalous; see :mod:`xaudit.adapters.trees.isolation`)."""


@dataclass
class SklearnModel(ModelBase):
    """A fitted scikit-learn estimator."""

    estimator: Any = None
    method: str = "predict"
    columns: tuple[str, ...] | None = None
    file_hash: str | None = None
    categories: dict[str, list[Any]] | None = None
    log_odds: bool = False
    _trees: TreeEnsemble | None = field(default=None, repr=False, compare=False)

    def _rows(self, X: np.ndarray) -> Any:
        """``X`` as the estimator was fitted: a DataFrame with its columns, or the array."""
        return X if self.columns is None else to_frame(X, self.columns, self.categories)

    def _predict_raw(self, X: np.ndarray) -> Any:
        if self.method == PATH_LENGTH:
            return mean_path_length(self.estimator, self._rows(X))
        out = getattr(self.estimator, self.method)(self._rows(X))
        if self.log_odds:
            p = np.clip(np.asarray(out, dtype=np.float64), 1e-15, 1 - 1e-15)
            return np.log(p) - np.log1p(-p)
        return out

    def fingerprint(self) -> str:
        """SHA-256 of the model file, or of the fitted estimator's canonical state."""
        return self.file_hash or state_sha256(self.estimator)

    def tree_ensemble(self) -> TreeEnsemble:
        """The estimator's trees (capability ``tree_ensemble``), extracted on first use.

        Its raw output is ``predict_proba`` for tree and forest classifiers,
        ``decision_function`` for boosting classifiers and ``predict`` for regressors; see
        :func:`xaudit.adapters.trees.extract.extract_tree_ensemble`.
        """
        if self._trees is None:
            self._trees = extract_tree_ensemble(self.estimator)
        return self._trees

    def hyperparameters(self) -> Hyperparameters:
        """``get_params(deep=True)`` against the class defaults
        (:mod:`xaudit.adapters.hyperparameters`)."""
        return estimator_hyperparameters(self.estimator, "scikit-learn estimator")

    def randomizations(self) -> tuple[str, ...]:
        """``leaves`` for tree models, then ``labels`` (see :mod:`xaudit.adapters.estimators`)."""
        return estimator_randomizations(self, self.estimator)

    def randomized(self, request: Randomization,
                   rng: np.random.Generator) -> tuple[RandomizedStage, ...]:
        """Permuted leaves, or a clone retrained on permuted labels; this model is unchanged."""
        return estimator_randomized(self, self.estimator, request, rng, self._refit)

    def _refit(self, X: np.ndarray, y: np.ndarray) -> SklearnModel:
        return replace(
            self, name=f"{self.name} (retrained on permuted labels)",
            estimator=refit_clone(self.estimator, self._rows(X), y), file_hash=None,
            _trees=None)


class SklearnAdapter(Adapter):
    """Fitted scikit-learn estimators, Pipelines, and ``.skops`` / trusted pickle files."""

    name = "sklearn"
    extra = "sklearn"
    summary = "scikit-learn estimators and Pipelines; .skops files; pickle/joblib with trust."
    priority = 10
    Options = SklearnOptions

    @classmethod
    def claims(cls, obj: object) -> bool:
        """scikit-learn objects, or model files with a scikit-learn suffix."""
        if isinstance(obj, str | Path):
            return Path(obj).suffix in (*PICKLE_SUFFIXES, SKOPS_SUFFIX)
        module = type(obj).__module__
        return module.startswith("sklearn.") or (
            hasattr(obj, "fit") and hasattr(obj, "predict") and hasattr(obj, "get_params")
        )

    @classmethod
    def load(cls, obj: object, options: AdapterOptions) -> SklearnModel:
        """Adapt a fitted estimator or load one from a file."""
        assert isinstance(options, SklearnOptions)
        file_hash = None
        if isinstance(obj, str | Path):
            path = Path(obj)
            obj, file_hash = _read_file(path, options.trust), file_sha256(path)
        from sklearn.base import is_classifier
        from sklearn.utils.validation import check_is_fitted

        if not hasattr(obj, "predict"):
            raise ModelLoadError(f"{type(obj).__name__} has no predict method; not an estimator")
        try:
            check_is_fitted(obj)
        except Exception as exc:
            raise ModelLoadError(f"{type(obj).__name__} is not fitted: {exc}") from None
        classifier = bool(is_classifier(obj))
        method = _method(obj, options.output, classifier)
        n_features = getattr(obj, "n_features_in_", None)
        text = n_features is None and _takes_text(obj)
        if n_features is None and not text:
            raise ModelLoadError(f"{type(obj).__name__} does not record n_features_in_")
        columns = getattr(obj, "feature_names_in_", None)
        names = tuple(map(str, columns)) if columns is not None else None
        task: Task = options.task or ("classification" if classifier else
                                      "other" if method == PATH_LENGTH else "regression")
        import sklearn

        return SklearnModel(
            name=type(obj).__name__,
            adapter=cls.name,
            task=task,
            input_spec=InputSpec(() if text else (int(n_features or 0),),
                                 "str" if text else "float64",
                                 "text" if text else "tabular", names),
            output_names=_output_names(obj, method, options.output_names,
                                       options.output == "log_odds"),
            framework="scikit-learn",
            framework_version=sklearn.__version__,
            estimator=obj,
            method=method,
            columns=names,
            file_hash=file_hash,
            categories=options.categories,
            log_odds=options.output == "log_odds",
            capabilities=estimator_capabilities(obj),
            capability_reasons=estimator_capability_reasons(obj),
        )


def _takes_text(estimator: Any) -> bool:
    """Whether ``estimator`` (or a Pipeline's first step) is a text vectorizer: rows are then
    single strings (feature shape ``()``, modality ``text``)."""
    steps = getattr(estimator, "steps", None)
    first = steps[0][1] if steps else estimator
    return hasattr(first, "build_analyzer")


def _method(estimator: Any, output: Output, classifier: bool) -> str:
    isolation = type(estimator).__name__ == "IsolationForest"
    if output == PATH_LENGTH or (output == "auto" and isolation):
        if not isolation:
            raise ModelLoadError(f"output 'path_length' needs an IsolationForest; "
                                 f"{type(estimator).__name__} is not one")
        return PATH_LENGTH
    if output == "log_odds":
        if not classifier:
            raise ModelLoadError(f"output 'log_odds' needs a classifier; "
                                 f"{type(estimator).__name__} is not one")
        output = "predict_proba"
    if output == "auto":
        has_proba = classifier and hasattr(estimator, "predict_proba")
        output = "predict_proba" if has_proba else "predict"
    if not hasattr(estimator, output):
        raise ModelLoadError(f"{type(estimator).__name__} has no {output} method")
    return output


def _output_names(estimator: Any, method: str, given: list[str] | None,
                  log_odds: bool = False) -> tuple[str, ...]:
    classes = getattr(estimator, "classes_", None)
    labels: Any
    if method == PATH_LENGTH:
        n, labels = 1, ["path_length"]
    elif method == "predict_proba" and classes is not None:
        n = len(classes)
        labels = [f"log_odds({c})" for c in classes] if log_odds else classes
    elif method == "decision_function" and classes is not None:
        n = 1 if len(classes) == 2 else len(classes)
        labels = [f"margin({classes[1]})"] if n == 1 else [f"margin({c})" for c in classes]
    else:
        n_targets = getattr(estimator, "n_outputs_", None)
        n = int(n_targets) if n_targets else 1
        labels = ["prediction"] if n == 1 else None
    if given is not None:
        if len(given) != n:
            raise ModelLoadError(f"output_names has {len(given)} name(s) but the model's "
                                 f"{method} gives {n} output(s)")
        return tuple(given)
    return default_output_names(n, labels)


def _read_file(path: Path, trust: bool) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    if path.suffix in PICKLE_SUFFIXES:
        if not trust:
            raise ModelLoadError(
                f"refusing to load {path.name}: pickle and joblib files can run arbitrary code "
                "when loaded. Save the model with skops (skops.io.dump) instead, or, if you "
                "trust this file's origin, set 'trust: true' in the suite (trust=True in Python)"
            )
        import joblib

        return joblib.load(path)
    if path.suffix == SKOPS_SUFFIX:
        try:
            import skops.io as sio
        except ImportError:
            raise ModelLoadError("loading .skops files needs skops: pip install "
                                 "'xaudit[sklearn]'") from None
        untrusted = sio.get_untrusted_types(file=path)
        if untrusted and not trust:
            raise ModelLoadError(
                f"refusing to load {path.name}: it contains types skops does not trust by "
                f"default ({', '.join(untrusted)}); review them and set 'trust: true' to allow"
            )
        return sio.load(path, trusted=untrusted)
    raise ModelLoadError(f"the sklearn adapter cannot read {path.suffix} files")


@hookimpl
def xaudit_register_adapters(registry: Registry[Adapter]) -> None:
    """Register the ``sklearn`` adapter."""
    registry.add(SklearnAdapter)
