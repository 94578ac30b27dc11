"""Model-parameter and data randomization tests: an explanation must depend on the model.

Adebayo et al. 2018, "Sanity Checks for Saliency Maps" (NeurIPS). The model is randomized, the
explained rows are re-explained with the same method, params and seed, and the original and
randomized attributions are compared per row and targeted output by Spearman rank correlation
(signed by default; ``absolute: true`` as in Quantus' default and the paper's absolute-value
figures) or, for images, SSIM of the channel-summed absolute maps. A faithful explanation
changes, so the similarity is low; an explanation that ignores the model (random values under a
fixed seed, an edge detector, the input itself) stays identical. The gated value is a
similarity: lower is better. Where the rank correlation is undefined (one side's map is
constant, the other not, or a map is not finite) the gated value is NaN, failing every gate,
with the rows and the reason in ``details["undefined"]`` (:mod:`xaudit.plugins.checks.undefined`);
two identical constant maps count as unchanged (similarity 1).

Randomizations (``randomization: auto`` picks the first the model offers). The check opens no
model: it asks for the ``randomization`` capability (:mod:`xaudit.randomization`) and each
adapter randomizes its own models (a third-party adapter can offer it the same way):

- ``layers`` — torch models (:mod:`xaudit.adapters.torch.randomize`): the parameters of the
  layers (modules owning parameters, taken top-down from the output) are re-initialised with
  ``reset_parameters`` on a deep copy, the torch seed set to ``reinit_seed`` before each layer
  (as Quantus' ``get_random_layer_generator`` does with its ``seed + 1``). ``cascading``: stage
  ``i`` randomizes the top ``i + 1`` layers; ``independent``: stage ``i`` randomizes layer ``i``
  alone; ``max_layers`` bounds the stages.
- ``leaves`` — tree ensembles (:mod:`xaudit.adapters.trees.randomize`): every tree's leaf values
  are permuted among its leaves (or ``resample``d from their mean and spread), and a model
  predicting with the randomized ensemble is re-explained.
- ``labels`` — the data randomization test (:mod:`xaudit.adapters.estimators`): a clone of the
  estimator is retrained on the training rows with permuted labels (needs ``data`` with labels).

Differences from Quantus' ``MPRT``: Quantus reports the similarity per layer; ``aggregate``
picks one number (the last, fully randomized cascading stage by default) and all stages are in
the details. Quantus normalises and takes absolute values by default; ``absolute: true`` does
the latter and Spearman ignores the former. Signed is our default because absolute maps stay
similar under randomization for faithful methods too (measured on the 8x8-digits CNN with IG:
Spearman 0.90 absolute vs -0.06 signed after full cascading randomization; TreeSHAP on boosted
trees after leaf permutation: 0.80 vs -0.17); Adebayo et al. report the same effect of input
multiplication. Quantus' ``MPRT(abs=True, normalise=False)`` gives our ``absolute: true``
values for the same seed (their ``seed + 1`` is our ``reinit_seed``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.api import CountingModel
from xaudit.data import Dataset
from xaudit.errors import CapabilityError, InputError
from xaudit.explanation import Explanation
from xaudit.hookspecs import hookimpl
from xaudit.model import Capability, Model
from xaudit.plugin import Check, CheckOutcome, PluginParams
from xaudit.plugins._support.images import image_axes
from xaudit.plugins._support.ssim import ssim
from xaudit.plugins._support.statistics import mean_finite, spearman_rows
from xaudit.plugins.checks.cost import Cost
from xaudit.plugins.checks.explained import local_rows, per_slot, reexplainer
from xaudit.plugins.checks.undefined import Undefined, constant
from xaudit.randomization import LABELS, Randomization, offered, randomize, refusal
from xaudit.registry import Registry


class ModelRandomizationParams(PluginParams):
    """Parameters of ``model_randomization``."""

    randomization: Literal["auto", "layers", "leaves", "labels"] = "auto"
    """What is randomized; ``auto``: the first kind the model offers (layers for torch models,
    leaves for tree ensembles, else labels)."""
    mode: Literal["cascading", "independent"] = "cascading"
    """Layer randomization: cumulative from the top, or one layer at a time."""
    max_layers: int | None = Field(None, ge=1)
    """Randomize at most this many layers (from the top)."""
    leaves: Literal["permute", "resample"] = "permute"
    """Leaf randomization: permute each tree's leaf values, or draw new ones."""
    similarity: Literal["spearman", "ssim"] = "spearman"
    """The gated similarity; SSIM needs image rows (2-D or 3-D)."""
    absolute: bool = False
    """Compare absolute attributions (sign flips then do not count as change; Quantus' default).
    Off by default: absolute maps of input-multiplying methods (IG on images) and of trees whose
    split structure is kept (leaf permutation) stay rank-similar even for a faithful method."""
    aggregate: Literal["last", "max", "mean"] = "last"
    """Which stage's similarity is gated: the last (fully randomized), the worst or the mean."""
    reinit_seed: int | None = Field(None, ge=0)
    """Torch seed of the re-initialisation; derived from the check's seed when omitted."""


class ModelRandomization(Check):
    """Similarity of attributions before and after randomizing the model (lower is better)."""

    name = "model_randomization"
    summary = "Attributions must change when the model's parameters or labels are randomized."
    description = (
        "The model is randomized (its layers' parameters re-initialised, its trees' leaf values "
        "permuted, or the estimator retrained on permuted labels) and the explained rows are "
        "explained again with the same method, parameters and seed. The similarity of the "
        "original and the new attributions per row (Spearman rank correlation, or SSIM for image "
        "maps) is the gated value; lower is better, since attributions that stay the same do not "
        "depend on what the model learned.")
    paper = "Adebayo et al. 2018 (Sanity Checks for Saliency Maps)"
    Params = ModelRandomizationParams
    params: ModelRandomizationParams
    direction = "lower"
    requires = frozenset({Capability.RANDOMIZATION.value})

    def unmet(self, model: Model) -> list[str]:
        """The ``randomization`` capability, and the kind ``randomization`` names (any kind
        for ``auto``) among those the model offers."""
        unmet = super().unmet(model)
        wanted, kinds = self.params.randomization, offered(model)
        if not unmet and (not kinds or (wanted != "auto" and wanted not in kinds)):
            unmet.append(f"randomization {wanted!r} (the model offers "
                         f"{', '.join(kinds) or 'none'})")
        return unmet

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """Per-stage similarities; per-row values of the gated stage."""
        p, cost = self.params, Cost(model)
        kind = self._kind(model, data)
        reexplain = reexplainer(self, self.name)
        drawn = int(rng.integers(0, 2**31 - 1))
        seed = drawn if p.reinit_seed is None else p.reinit_seed
        rows = local_rows(explanation, self.name)
        request = Randomization(kind, p.mode, p.max_layers, seed, p.leaves, probe_rows=rows,
                                X_train=data.X_train, y_train=data.y_train)
        stages = randomize(model, request, rng)
        phi = explanation.values
        sims, extra = [], []
        undefined = Undefined(explanation.n_rows)
        undefined.not_finite("the attributions", phi)
        counted = [CountingModel(stage.model) for stage in stages]
        gated = counted[-1:] if p.aggregate == "last" else counted
        for stage, randomized in zip(stages, counted, strict=True):
            again = cost.reexplain(reexplain, rows, explanation.target_indices,
                                   model=randomized)
            sims.append(self._similarity(phi, again))
            extra.append(self._other(phi, again))
            if randomized in gated:
                self._undefined(undefined, phi, again, stage.name)
        table = np.stack(sims)  # (stages, n); NaN where undefined
        stage_means = [float(s.mean()) for s in table]
        if p.aggregate == "last":
            per_row = table[-1]
        elif p.aggregate == "max":  # the most similar stage; unknown if a stage is undefined
            per_row = table[int(np.argmax(stage_means))] if np.isfinite(stage_means).all() \
                else table.max(axis=0)
        else:
            per_row = table.mean(axis=0)
        details: dict[str, Any] = {
            "randomization": kind, "stages": [stage.name for stage in stages],
            "similarity": p.similarity, "stage_similarity": stage_means,
            "absolute": p.absolute, "seed": seed,
            **cost.details(), "randomized_model_calls": sum(c.calls for c in counted),
        }
        if any(e is not None for e in extra):
            details["stage_ssim" if p.similarity == "spearman" else "stage_spearman"] = extra
        if kind == "layers":
            details["mode"] = p.mode
        return undefined.outcome(per_row, details)

    def _undefined(self, undefined: Undefined, a: np.ndarray, b: np.ndarray,
                   stage: str) -> None:
        """Rows whose similarity to the stage ``stage``'s attributions ``b`` is undefined."""
        undefined.not_finite(f"the attributions after randomizing {stage!r}", b)
        if self.params.similarity == "ssim":
            return  # SSIM compares constant maps too (its constants keep it defined)
        pa, pb = _compared(a, self.params.absolute), _compared(b, self.params.absolute)
        same = constant(pa) & constant(pb) & np.all(pa == pb, axis=-1)
        undefined.add(f"the attributions are constant (no rank correlation with those after "
                      f"randomizing {stage!r})", constant(pa) & ~same)
        undefined.add(f"the attributions after randomizing {stage!r} are constant (no rank "
                      "correlation)", constant(pb) & ~same)

    def _kind(self, model: Model, data: Dataset) -> str:
        """The kind to ask for: the named one, or for ``auto`` the first the model offers."""
        kinds, wanted = offered(model), self.params.randomization
        kind = (kinds[0] if kinds else None) if wanted == "auto" else wanted
        if kind is None or kind not in kinds:
            raise CapabilityError(f"{self.name}: {refusal(model, kind)}")
        if kind == LABELS and (data.y is None or data.y_train is None):
            raise InputError("model_randomization with labels needs training labels: pass "
                             "data=Dataset.from_arrays(X, y) or use a suite with a target")
        return kind

    # ------------------------------------------------------------ similarity

    def _similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.params.similarity == "ssim":
            return _ssim_rows(a, b)
        return _spearman_rows(a, b, self.params.absolute)

    def _other(self, a: np.ndarray, b: np.ndarray) -> float | None:
        """The non-gated similarity, recorded in the details (SSIM only for images)."""
        if self.params.similarity == "ssim":
            return mean_finite(_spearman_rows(a, b, self.params.absolute))
        return mean_finite(_ssim_rows(a, b)) if a.ndim >= 4 else None


def _compared(a: np.ndarray, absolute: bool) -> np.ndarray:
    """Values ``(n, k, d)`` as the similarity compares them (absolute ones, if asked)."""
    flat = per_slot(a)
    return np.abs(flat) if absolute else flat


def _spearman_rows(a: np.ndarray, b: np.ndarray, absolute: bool) -> np.ndarray:
    """Spearman per row (mean over outputs); 1 for two identical constant maps (unchanged),
    NaN where only one side is constant (undefined)."""
    pa, pb = _compared(a, absolute), _compared(b, absolute)
    rho = spearman_rows(pa, pb)  # (n, k); NaN when a side is constant
    rho = np.where(constant(pa) & constant(pb) & np.all(pa == pb, axis=-1), 1.0, rho)
    return np.asarray(rho.mean(axis=1))


def _ssim_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM per row (mean over outputs) of absolute maps, channels summed for 3-D rows."""
    if a.ndim not in (4, 5):
        raise InputError("similarity: ssim needs image rows (H, W) or (C, H, W)/(H, W, C)")
    shape = a.shape[1:-1]
    out = np.empty((a.shape[0], a.shape[-1]))
    for r in range(a.shape[0]):
        for j in range(a.shape[-1]):
            ma, mb = np.abs(a[r, ..., j]), np.abs(b[r, ..., j])
            if len(shape) == 3:
                ch = image_axes(shape).channel
                ma, mb = ma.sum(axis=ch), mb.sum(axis=ch)
            out[r, j] = ssim(ma, mb)
    return np.asarray(out.mean(axis=1))


@hookimpl
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register ``model_randomization``."""
    registry.add(ModelRandomization)
