"""Exact TreeSHAP (``shap.tree``) for any model with the ``tree_ensemble`` capability.

Lundberg et al. 2020, "From local explanations to global understanding with explainable AI for
trees" (Nature Machine Intelligence 2, 56-67): exact Shapley values of tree ensembles, either
``tree_path_dependent`` (the conditional expectation follows the training cover recorded in the
trees; no background needed) or ``interventional`` (the marginal expectation over background
rows). Optional SHAP interaction values (path-dependent).

Kernels: :mod:`.tree_path` (numba; Gauss-Legendre quadrature of the path polynomial, one
walk of each tree per row), :mod:`.tree_interventional` (numba; per-leaf background tables,
or a walk per row and background row), :mod:`.tree_torch` (the same path-dependent
values in a dense, batched form for a GPU) and :mod:`.tree_numpy` (that dense form in numpy, for
workloads smaller than numba's start costs). Before computing, a few rows are predicted by the
model and by the trees, and a model whose outputs are neither the trees' raw output nor its
transform is refused.
Rows are processed in chunks of ``chunk_size``, so working memory is set by the chunk size.

Outputs: ``model_output="raw"`` explains the ensemble's raw output (margins for boosting,
probabilities for forest classifiers, whose leaves are probabilities); ``"probability"``, under
the interventional mode, explains ``transform(raw)`` of a logistic model. A binary classifier
whose trees give one margin and whose model gives two outputs (the two classes' probabilities)
is explained for class 1 by the margin and for class 0 by its negation (probability: ``1 - p``).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.batching import row_blocks
from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins.shapley import tree_interventional, tree_numpy, tree_path, tree_torch
from xaudit.plugins.shapley.tree_flat import FlatEnsemble, flatten, leaf_paths
from xaudit.registry import Registry
from xaudit.targets import TargetSelection
from xaudit.trees import TreeEnsemble


class TreeShapParams(PluginParams):
    """Parameters of ``shap.tree``."""

    feature_perturbation: Literal["auto", "tree_path_dependent", "interventional"] = "auto"
    """``auto``: interventional when a background is given, else tree_path_dependent."""
    model_output: Literal["raw", "probability"] = "raw"
    """``raw``: the trees' raw output (margins for boosting, probabilities for forests);
    ``probability``: the transformed output of a logistic model (interventional only)."""
    interactions: bool = False
    """Also compute SHAP interaction values into ``extras['interactions']``, shaped
    ``(n, d, d, k)`` (path-dependent only)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where path-dependent SHAP values run: ``cpu``, ``cuda`` (torch on a GPU) or ``auto``
    (cuda when torch is already imported, by a torch model say, and sees a CUDA device; else
    cpu, without importing torch, which would cost seconds of every cold start). Interventional
    and interaction values always run on the CPU (numba)."""
    backend: Literal["auto", "numba", "numpy", "torch"] = "auto"
    """``numba``: the compiled CPU kernel; ``numpy``: the dense quadrature form in numpy (no
    compiled code to load; for small workloads); ``torch``: the dense form in torch (on
    ``device``); ``auto``: torch on a GPU; on the CPU numpy when rows x leaves x depth x
    quadrature nodes is at most 2^23 (a few dozen rows of a few hundred trees: numba's import
    and cache load would cost more than the values), else numba. Path-dependent SHAP values
    only; the backends agree to rounding (about 1e-15 relative)."""
    chunk_size: int = Field(4096, gt=0)
    """Rows explained at a time: working memory grows with it, not with the number of rows."""


class TreeShap(Explainer):
    """Exact Shapley values of tree ensembles (path-dependent or interventional)."""

    name = "shap.tree"
    row_parallel = True
    summary = "Exact TreeSHAP: path-dependent or interventional, with interaction values."
    description = (
        "Exact Shapley values of a tree ensemble, computed along the trees' paths: path-dependent "
        "(the expectation over absent features follows the share of training rows recorded in "
        "each node; no background needed) or interventional (the expectation over the background "
        "rows, features replaced independently of each other). A row's values add up to the "
        "output minus the base value; SHAP interaction values can be computed too.")
    paper = ("Lundberg et al. 2020, From local explanations to global understanding with "
             "explainable AI for trees, Nature Machine Intelligence")
    limitations = (
        "Path-dependent values condition on the training cover stored in the trees, not on the "
        "data: correlated features can share credit in ways the interventional mode does not.",
        "Interventional values use per-leaf background tables of 2^m entries (m distinct "
        "features on the leaf's path); trees with m > 12 fall back to a walk per (row, "
        "background row) pair, O(rows x background x visited nodes): keep the background to a "
        "few hundred rows there.",
        "Interventional and interaction values run on the CPU (numba) only.",
        "backend='auto' picks numpy or numba by the size of the whole call, so the same row "
        "explained in a small and in a large call can differ in the last bits (about 1e-15 "
        "relative); set backend='numba' for bit-identical values across call sizes.",
        "In a long-lived process that explains many small batches, numba (once loaded) is "
        "faster per batch than the numpy form that backend='auto' picks for them (1.7x at 40 "
        "rows of a 100-tree ensemble, more for larger batches); set backend='numba' there.",
        "model_output='probability' rescales each (row, background row) pair linearly, as shap "
        "does: exact local accuracy, but not the Shapley values of the transformed game.",
        "Interaction values are path-dependent only and cost about d times the SHAP values.",
    )
    Params = TreeShapParams
    params: TreeShapParams
    requires = frozenset({"tree_ensemble"})
    additive = True

    def explain(
        self,
        model: Model,
        X: np.ndarray,
        *,
        background: np.ndarray | None,
        targets: TargetSelection,
        rng: np.random.Generator,
    ) -> Attribution:
        """SHAP values ``(n, d, k)``, base values ``(n, k)`` (and interactions, if asked)."""
        params = self.params
        ensemble: TreeEnsemble = model.tree_ensemble()  # type: ignore[attr-defined]
        mode = params.feature_perturbation
        if mode == "auto":
            mode = "tree_path_dependent" if background is None else "interventional"
        if mode == "interventional" and background is None:
            raise InputError("shap.tree with feature_perturbation='interventional' needs a "
                             "background; pass background=... or use 'tree_path_dependent'")
        if params.interactions and mode != "tree_path_dependent":
            raise InputError("shap.tree interaction values are path-dependent only; set "
                             "feature_perturbation='tree_path_dependent' or interactions=false")
        transform = _output_transform(ensemble, model, params.model_output, mode)
        rows = np.asarray(X, dtype=np.float64).reshape(X.shape[0], -1)
        flat = flatten(ensemble)
        n_model = len(model.output_names) or flat.n_outputs
        mapping = _OutputMap(flat.n_outputs, n_model, transform is not None)
        _check_outputs(model, ensemble, flat, rows, mapping)
        backend, device = _backend(params.backend, params.device, mode, params.interactions,
                                   flat, rows.shape[0])
        n, d, k = rows.shape[0], flat.n_features, targets.n_slots
        values = np.empty((n, d, k))
        interactions = np.empty((n, d, d, k)) if params.interactions else None
        base_rows = np.empty((n, k))
        marginal = False  # interventional: features replaced by background values
        if mode == "interventional" and background is not None:
            kernel, base = _interventional(ensemble, flat, background, transform, n)
            marginal = True
        else:
            kernel, base = _path_dependent(flat, backend, device), flat.expected_value()
        base_model = mapping.base(base)
        for chunk_rows in row_blocks(n, params.chunk_size):
            start, stop = chunk_rows.start, chunk_rows.stop
            chunk = ensemble.cast(rows[start:stop])
            index = targets.indices[start:stop]
            phi = kernel(chunk)
            values[start:stop] = np.take_along_axis(mapping.values(phi), index[:, None, :],
                                                    axis=2)
            base_rows[start:stop] = np.take_along_axis(
                np.broadcast_to(base_model, (stop - start, base_model.shape[0])), index, axis=1)
            if interactions is not None:
                inter = mapping.values(tree_path.interaction_values(flat, chunk, phi))
                interactions[start:stop] = np.take_along_axis(
                    inter, index[:, None, None, :], axis=3)
        extras = {} if interactions is None else {"interactions": interactions}
        return Attribution(
            values=values.reshape(n, *X.shape[1:], k),
            base_values=base_rows,
            extras=extras,
            metadata={"feature_perturbation": mode, "model_output": params.model_output,
                      "device": device, "backend": backend, "n_trees": len(ensemble.trees),
                      "max_depth": flat.max_depth,
                      "n_background": 0 if background is None else int(background.shape[0])},
            handoff=Handoff(marginal=marginal),
        )


def _path_dependent(flat: FlatEnsemble, backend: str,
                    device: str) -> Callable[[np.ndarray], np.ndarray]:
    """The path-dependent kernel: rows (cast) to raw-output SHAP values ``(n, d, K)``."""
    if backend == "numba":
        tables = tree_path.edge_tables(flat, *tree_path.quadrature(flat.max_depth))
        return lambda chunk: tree_path.shap_values(flat, chunk, tables)
    paths = leaf_paths(flat)
    if backend == "numpy":
        return lambda chunk: tree_numpy.shap_values(flat, chunk, paths)
    return lambda chunk: tree_torch.shap_values(flat, chunk, device, paths)


def _cpu_backend(flat: FlatEnsemble, n_rows: int) -> str:
    """``backend: auto`` on the CPU: numpy for a small workload (no numba to load), else numba
    (decided by the whole call's size, never by what this process loaded before)."""
    n_leaves = int(np.count_nonzero((flat.is_leaf == 1) & (flat.parent >= 0)))
    if tree_numpy.work(flat, n_rows, n_leaves) <= tree_numpy.SMALL_WORK:
        return "numpy"
    return _numba()


def _interventional(ensemble: TreeEnsemble, flat: FlatEnsemble, background: np.ndarray,
                    transform: str | None,
                    n_rows: int) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """The interventional kernel and its base value ``E_b[output(b)]``."""
    bg = ensemble.cast(np.asarray(background, dtype=np.float64).reshape(
        background.shape[0], -1))
    bg_dirs = tree_interventional.directions(flat, bg)
    bg_raw = flat.predict_raw(bg)
    how = tree_interventional.plan(flat, n_rows, bg.shape[0], transform is not None)
    base = (bg_raw if transform is None else ensemble.transform(bg_raw)).mean(axis=0)

    def kernel(chunk: np.ndarray) -> np.ndarray:
        scale = None if transform is None else _pair_scale(
            ensemble, flat.predict_raw(chunk), bg_raw)
        return tree_interventional.shap_values(flat, chunk, bg_dirs, scale, how)

    return kernel, np.asarray(base)


class _OutputMap:
    """From the trees' ``K`` raw outputs to the model's ``m`` outputs (see the module doc)."""

    def __init__(self, n_trees_out: int, n_model: int, probability: bool) -> None:
        if n_model not in (n_trees_out, 2 * n_trees_out if n_trees_out == 1 else -1):
            raise InputError(f"the model has {n_model} outputs but its trees give "
                             f"{n_trees_out}; shap.tree cannot tell which tree output explains "
                             "which model output (adapt the model with output='margin')")
        self.flip = n_model == 2 and n_trees_out == 1
        self.probability = probability

    def values(self, phi: np.ndarray) -> np.ndarray:
        return np.concatenate([-phi, phi], axis=-1) if self.flip else phi

    def base(self, base: np.ndarray) -> np.ndarray:
        if not self.flip:
            return base
        return np.concatenate([1.0 - base if self.probability else -base, base])


def _check_outputs(model: Model, ensemble: TreeEnsemble, flat: FlatEnsemble, rows: np.ndarray,
                   mapping: _OutputMap) -> None:
    """Refuse a model whose outputs are neither the trees' raw output nor its transform.

    A few rows are predicted by the model and by the trees: the explanation's output axis is
    the model's, so a mismatch (say, log-odds of a forest's probabilities) would mislabel it.
    """
    sample = rows[:8]
    if sample.shape[0] == 0:
        return
    predicted = np.asarray(model.predict(sample), dtype=np.float64).reshape(sample.shape[0], -1)
    raw = flat.predict_raw(ensemble.cast(sample))
    transformed = ensemble.transform(raw)
    candidates = [mapping.values(raw)]
    if mapping.flip:
        candidates.append(np.concatenate([1.0 - transformed, transformed], axis=1))
    else:
        candidates.append(transformed)
    for candidate in candidates:
        if candidate.shape == predicted.shape and np.allclose(
                candidate, predicted, rtol=1e-4, atol=1e-6 * max(1.0, np.abs(predicted).max())):
            return
    raise InputError(f"shap.tree: the model's outputs ({', '.join(model.output_names)}) are "
                     "neither its trees' raw output nor that output's "
                     f"{ensemble.output_transform} transform, so the values could not be "
                     "labelled with them; adapt the model with its default output, or "
                     "output='margin' / 'decision_function'")


def _output_transform(ensemble: TreeEnsemble, model: Model, output: str,
                      mode: str) -> str | None:
    """The transform to explain through (``None``: the raw output), or a refusal."""
    if output == "raw":
        return None
    kind = ensemble.output_transform
    if kind == "identity":
        if model.task == "classification":
            return None  # a forest classifier: its raw output already is the probability
        raise InputError("model_output='probability' needs a classifier; this model's trees "
                         "give a regression output: use model_output='raw'")
    if mode != "interventional":
        raise InputError("model_output='probability' of a boosting model needs "
                         "feature_perturbation='interventional' with a background (as in "
                         "shap); path-dependent values explain model_output='raw'")
    if kind == "softmax":
        raise InputError("model_output='probability' is not supported for a softmax "
                         "(multiclass boosting) model: pair rescaling is defined per output "
                         "for a logistic transform only; use model_output='raw'")
    return kind


def _pair_scale(ensemble: TreeEnsemble, raw_x: np.ndarray, raw_b: np.ndarray) -> np.ndarray:
    """``(g(m_x) - g(m_b)) / (m_x - m_b)`` per row, background row and output (1 if equal)."""
    gx, gb = ensemble.transform(raw_x), ensemble.transform(raw_b)
    diff = raw_x[:, None, :] - raw_b[None, :, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (gx[:, None, :] - gb[None, :, :]) / diff
    return np.asarray(np.where(diff == 0.0, 1.0, scale))


def _backend(backend: str, device: str, mode: str, interactions: bool, flat: FlatEnsemble,
             n_rows: int) -> tuple[str, str]:
    """The kernel (``numba``, ``numpy`` or ``torch``) and device that compute the values."""
    if device == "cuda" and not _cuda_available(ask=True):
        raise InputError("shap.tree device='cuda' but torch sees no CUDA device; use "
                         "device='cpu' or 'auto'")
    if mode == "interventional" or interactions:
        if backend in ("torch", "numpy"):
            raise InputError(f"shap.tree backend='{backend}' computes path-dependent SHAP "
                             "values only; use backend='numba' (or 'auto') for interventional "
                             "or interaction values")
        return _numba(), "cpu"
    if device == "auto":
        device = ("cuda" if backend not in ("numba", "numpy") and _cuda_available()
                  else "cpu")
    if backend in ("numba", "numpy") and device == "cuda":
        raise InputError(f"shap.tree backend='{backend}' runs on the CPU; use device='cpu' or "
                         "backend='torch'")
    if backend == "auto":
        backend = "torch" if device == "cuda" else _cpu_backend(flat, n_rows)
    if backend == "torch" and importlib.util.find_spec("torch") is None:
        raise InputError("shap.tree backend='torch' needs torch installed; use "
                         "backend='numba'")
    return (_numba() if backend == "numba" else backend), device


def _numba() -> str:
    if importlib.util.find_spec("numba") is None:
        raise InputError("shap.tree's CPU kernels need numba: pip install numba (it comes with "
                         "the xaudit[sklearn], [xgboost] and [lightgbm] extras)")
    return "numba"


def _cuda_available(ask: bool = False) -> bool:
    """Whether torch sees a CUDA device. ``device: auto`` asks only a torch something else
    already imported (a torch model, say): importing torch just to ask costs seconds of every
    cold start; ``device: cuda`` (``ask``) imports it."""
    if "torch" not in sys.modules and not (ask and importlib.util.find_spec("torch")):
        return False
    import torch

    available: Any = torch.cuda.is_available()
    return bool(available)


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``shap.tree``."""
    registry.add(TreeShap)
