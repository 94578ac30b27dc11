"""Leaf randomization of tree ensembles (the ``leaves`` kind of the ``randomization`` capability).

The tree-ensemble analogue of Adebayo et al. 2018's model parameter randomization test: the
split structure is kept and every tree's leaf values are permuted among its leaves (or
``resample``d from their mean and spread), then internal values are recomputed as the
cover-weighted means of their children. The randomized model predicts with the randomized
framework-neutral structure (:class:`~xaudit.trees.TreeEnsemble`), so it works the same for
scikit-learn, XGBoost and LightGBM models; it is refused when the structure does not reproduce
the model's own outputs (another output scale or width), since the randomized model would then
explain something else.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np

from xaudit.errors import InputError
from xaudit.model import ModelBase, sha256_of_arrays
from xaudit.randomization import LeafDraw
from xaudit.trees import LEAF, Tree, TreeEnsemble, TreeModel

PROBE_ROWS = 16
"""How many of the probe rows check that the tree structure reproduces the model."""


@dataclasses.dataclass(eq=False)
class RandomizedTreeModel(ModelBase):
    """A model predicting with a (randomized) tree ensemble: ``transform(raw(x))``."""

    ensemble: TreeEnsemble | None = None

    def _predict_raw(self, X: np.ndarray) -> Any:
        ensemble = self.tree_ensemble()
        return ensemble.transform(ensemble.predict_raw(np.asarray(X, np.float64)))

    def fingerprint(self) -> str:
        """Hash of the randomized leaf values."""
        return sha256_of_arrays(*[t.value for t in self.tree_ensemble().trees],
                                extra="randomized")

    def tree_ensemble(self) -> TreeEnsemble:
        """The randomized ensemble."""
        if self.ensemble is None:
            raise InputError("RandomizedTreeModel was built without an ensemble")
        return self.ensemble


def randomized_leaves(model: TreeModel, how: LeafDraw, rng: np.random.Generator,
                      probe_rows: np.ndarray | None) -> RandomizedTreeModel:
    """``model`` with every tree's leaf values permuted or resampled (draws from ``rng``, tree
    by tree); refused when its tree structure does not reproduce its outputs on the first
    :data:`PROBE_ROWS` of ``probe_rows``."""
    ensemble = model.tree_ensemble()
    if probe_rows is None:
        raise InputError(f"randomizing the leaves of model {model.name!r} needs probe rows to "
                         "check that its tree structure reproduces its outputs")
    rows = np.asarray(probe_rows[:PROBE_ROWS], dtype=np.float64)
    own = ensemble.transform(ensemble.predict_raw(rows))
    if own.shape != (rows.shape[0], len(model.output_names)) or not np.allclose(
            own, model.predict(rows), rtol=1e-5, atol=1e-6):
        raise InputError(f"the tree structure of model {model.name!r} does not reproduce the "
                         "model's outputs (another output scale or width), so its leaves "
                         "cannot be randomized faithfully; randomize its labels instead "
                         "(randomization: labels)")
    trees = [_randomized_tree(tree, how, rng) for tree in ensemble.trees]
    return RandomizedTreeModel(
        name=f"{model.name} (leaves randomized)", adapter=model.adapter, task=model.task,
        input_spec=model.input_spec, output_names=tuple(model.output_names),
        capabilities=frozenset({"predict", "tree_ensemble"}),
        ensemble=dataclasses.replace(ensemble, trees=trees))


def _randomized_tree(tree: Tree, how: LeafDraw, rng: np.random.Generator) -> Tree:
    new = copy.deepcopy(tree)
    leaves = np.flatnonzero(new.left == LEAF)
    values = new.value[leaves]
    if how == "permute":
        new.value[leaves] = values[rng.permutation(len(leaves))]
    else:
        spread = values.std(axis=0) if len(leaves) > 1 else np.abs(values).mean(axis=0)
        new.value[leaves] = values.mean(axis=0) + spread * rng.standard_normal(values.shape)
    for node in range(new.n_nodes - 1, -1, -1):  # children come after their parents
        if new.left[node] != LEAF:
            lc, rc = new.left[node], new.right[node]
            total = new.cover[lc] + new.cover[rc]
            if total > 0:
                new.value[node] = (new.cover[lc] * new.value[lc]
                                   + new.cover[rc] * new.value[rc]) / total
    return new
