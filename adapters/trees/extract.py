"""Fitted tree models as framework-neutral :class:`~xaudit.trees.TreeEnsemble` structures.

:func:`extract_tree_ensemble` dispatches on the model's library (by module name, so this module
imports no framework) to the extractor that library's module registered (see
:mod:`.common`); :func:`tree_support` says, cheaply and without extracting, whether a model is
one of the supported tree models.
"""

from __future__ import annotations

import importlib

from xaudit.trees import TreeEnsemble

from .common import EXTRACTORS, Extractor, refuse

EXTRACTOR_MODULES = {
    "sklearn": "xaudit.adapters.trees.sklearn",
    "xgboost": "xaudit.adapters.trees.xgboost",
    "lightgbm": "xaudit.adapters.trees.lightgbm",
}
"""Which module registers the extractor of each supported library (imported on first use)."""


def _extractor(model: object) -> Extractor | None:
    library = type(model).__module__.split(".")[0]
    if library not in EXTRACTOR_MODULES:
        return None
    if library not in EXTRACTORS:
        importlib.import_module(EXTRACTOR_MODULES[library])
    return EXTRACTORS[library]


def tree_support(model: object) -> str | None:
    """``None`` when ``model`` is a supported fitted tree model, else the reason it is not.

    The check looks at the model's type and hyper-parameters only; an extraction can still be
    refused for what only the fitted trees show (a categorical split, say).
    """
    extractor = _extractor(model)
    if extractor is None:
        return (f"{type(model).__qualname__} is not a scikit-learn, XGBoost or LightGBM tree "
                "model (a Pipeline is not one either: explain its final tree estimator on "
                "transformed features instead)")
    return extractor.unsupported_reason(model)


def extract_tree_ensemble(model: object) -> TreeEnsemble:
    """The trees of a fitted tree model whose ``predict_raw`` equals the model's raw output.

    Raw output: ``predict_proba`` for decision-tree, random-forest and extra-trees classifiers;
    ``decision_function`` (binary: one column) for scikit-learn boosting classifiers, the margin
    (``output_margin=True`` / ``raw_score=True``) for XGBoost and LightGBM; ``predict`` for
    regressors; the mean path length for an ``IsolationForest`` (see :mod:`.isolation`).
    Raises :class:`~xaudit.errors.CapabilityError` naming what is not representable.
    """
    reason = tree_support(model)
    extractor = _extractor(model)
    if reason is not None or extractor is None:
        raise refuse(model, reason or "unsupported")
    return extractor.extract(model)
