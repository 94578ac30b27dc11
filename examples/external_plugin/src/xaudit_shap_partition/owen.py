"""``shap_partition.owen``: Owen values, computed by shap's ``PartitionExplainer``.

The features are clustered into a binary hierarchy over the background rows (shap's
``maskers.Partition``, hierarchical clustering on ``clustering`` distances), and each feature
gets its Owen value (Owen 1977, "Values of games with a priori unions"): the Shapley value of the
game played first between the clusters of the hierarchy, then within them. The game is the
marginal one: a coalition's value is the mean model output over the background rows with the
coalition's features set to the row's values. Owen values are efficient, so a row's values add
up to ``f(x)`` minus the mean output on the background (the base value), and on an additive
model ``f(x) = sum_i g_i(x_i)`` they equal the Shapley values ``g_i(x_i) - E_b g_i(b_i)``.

This module shows how to wrap another library as an xaudit explainer:

* import the library inside :meth:`explain`, so ``xaudit plugins`` stays fast without it;
* map xaudit's targets (slot ``j`` of row ``r`` explains output ``targets.indices[r, j]``) onto
  the library's one-output calls;
* seed what the library draws: ``PartitionExplainer`` breaks ties in its priority queue with
  ``numpy.random``, so each output is explained with the global generator seeded from ``rng``
  (and put back as it was), which makes equal seeds give identical values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field
from xaudit import Attribution, Explainer, InputError, PluginParams
from xaudit.handoff import Handoff

if TYPE_CHECKING:
    from xaudit import Model
    from xaudit.targets import TargetSelection


class OwenParams(PluginParams):
    """Parameters of ``shap_partition.owen`` (unknown fields are errors)."""

    max_evals: int = Field(500, ge=10)
    """Model evaluations per row and output (shap's ``max_evals``): the hierarchy is split
    down to single features while this budget lasts; the values add up either way."""
    clustering: Literal["correlation", "euclidean", "cosine"] = "correlation"
    """Distance between features that builds the hierarchy (shap's ``clustering``)."""
    max_background: int = Field(100, ge=1)
    """Background rows the masker keeps (shap's ``max_samples``; a fixed subsample)."""


class OwenValues(Explainer):
    """Owen values over a hierarchy of the features (shap's PartitionExplainer)."""

    name = "shap_partition.owen"
    summary = "Owen values over a hierarchical clustering of the features (shap's Partition)."
    description = (
        "Owen values of the marginal game: the features are clustered into a hierarchy over the "
        "background rows, and each feature's value is its Shapley value in the game played "
        "first between clusters, then within them, a coalition's worth being the mean model "
        "output over the background with the coalition's features set to the row's values. The "
        "values add up to the output minus its mean on the background.")
    paper = ("Owen 1977, Values of games with a priori unions; Lundberg and Lee 2017, A Unified "
             "Approach to Interpreting Model Predictions (shap's PartitionExplainer)")
    limitations = (
        "Correlated features are credited as a group first: the split within a cluster depends "
        "on the hierarchy, which depends on the background.",
        "Model evaluations beyond max_evals stop the split early: the values still add up, but "
        "features of an unsplit cluster share its credit.",
    )
    Params = OwenParams
    params: OwenParams
    needs_background = True
    additive = True

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Owen values ``(n, d, k)`` and base values ``(n, k)`` of the targeted outputs."""
        import shap

        if background is None:
            raise InputError(f"{self.name} needs background rows to build its hierarchy")
        if X.ndim != 2:
            raise InputError(f"{self.name} explains flat rows (n, d); got rows shaped "
                             f"{X.shape[1:]}")
        p = self.params
        masker = shap.maskers.Partition(np.asarray(background, dtype=np.float64),
                                        max_samples=p.max_background, clustering=p.clustering)
        n, k = X.shape[0], targets.n_slots
        values, base = np.zeros((n, X.shape[1], k)), np.zeros((n, k))
        seed = int(rng.integers(2**32))
        for output in np.unique(targets.indices):
            rows, slots = np.nonzero(targets.indices == output)
            subset = np.unique(rows)
            explainer = shap.PartitionExplainer(_output(model, int(output)), masker)
            with _global_seed(seed + int(output)):
                explained = explainer(X[subset], max_evals=p.max_evals, silent=True)
            at = np.searchsorted(subset, rows)
            values[rows, :, slots] = np.asarray(explained.values)[at]
            base[rows, slots] = np.asarray(explained.base_values).reshape(-1)[at]
        return Attribution(values=values, base_values=base,
                           metadata={"max_evals": p.max_evals, "clustering": p.clustering,
                                     "shap_version": shap.__version__},
                           handoff=Handoff(marginal=True))


def _output(model: Model, output: int) -> Callable[[np.ndarray], np.ndarray]:
    """The model's ``output`` as a function of rows, as shap calls it."""
    return lambda rows: model.predict(rows)[:, output]


@contextmanager
def _global_seed(seed: int) -> Iterator[None]:
    """numpy's global generator seeded for the block, then put back as it was."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)
