"""DeepSHAP: DeepLIFT averaged over a background distribution of references.

Lundberg and Lee 2017, "A Unified Approach to Interpreting Model Predictions" (NeurIPS),
Section 4.2 (Deep SHAP), with DeepLIFT's Rescale rule (Shrikumar et al. 2017). For row ``x``
and background rows ``b_1..b_B``, ``phi(x) = (1/B) sum_j (x - b_j) * m(x, b_j)`` where
``m`` are the DeepLIFT multipliers of :mod:`xaudit.plugins.deep.deeplift` (same rules, same
allow-list, same refusals). The base value is ``E_b[f(b)]`` and the values sum to
``f(x) - E_b[f(b)]`` (exactly, for models whose operations all have a rule).

Cost: one forward and ``k`` backward passes over ``2 * n * B`` rows, in blocks of at most
``max_batch`` rows; summarise a large background first (e.g. a few dozen k-means centres).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer
from xaudit.plugins._support.autograd import (
    input_tensor,
    require_torch,
    target_index,
    to_numpy,
)
from xaudit.plugins._support.pass_size import plan_passes
from xaudit.plugins.deep.deeplift_rules import RuleParams, deeplift_gradients, prepare
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class DeepShapParams(RuleParams):
    """Parameters of ``shap.deep``."""

    max_batch: int | None = Field(None, gt=0)
    """Most (row, background row) pairs in one forward (which holds twice as many rows).
    Default: sized to the model and machine (as gradient.integrated)."""


class DeepShap(Explainer):
    """DeepLIFT (Rescale) averaged over the background rows: DeepSHAP."""

    name = "shap.deep"
    summary = "DeepSHAP: DeepLIFT multipliers averaged over a background (additive)."
    description = (
        "Averages DeepLIFT contributions over the background rows taken as references: phi(x) = "
        "(1/B) sum_j (x - b_j) m(x, b_j), with m the Rescale-rule multipliers. The base value is "
        "the mean output on the background, and a row's values add up to f(x) minus it, exactly "
        "for models whose operations all have an exact rule.")
    paper = ("Lundberg and Lee 2017, A Unified Approach to Interpreting Model Predictions; "
             "Shrikumar et al. 2017, Learning Important Features Through Propagating "
             "Activation Differences")
    limitations = (
        "Approximates Shapley values through DeepLIFT's linearisation; exact only for "
        "linear models.",
        "Needs the model's torch module; layers and operations without a DeepLIFT rule are "
        "refused by name.",
        "Cost grows with the background size; summarise it first.",
    )
    Params = DeepShapParams
    params: DeepShapParams
    requires = frozenset({"gradients"})
    modalities = frozenset({"tabular", "image", "sequence", "other"})
    needs_background = True
    additive = True
    default_target = "predicted"

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Values ``(n, *feature_shape, k)``; base values ``E_b[f(b)]``."""
        torch = require_torch(self.name)
        if background is None or len(background) == 0:
            raise InputError("shap.deep needs background rows")
        dm, module = prepare(model, self.name)
        x, refs = input_tensor(dm, X), input_tensor(dm, background)
        n_refs = refs.shape[0]
        values: list[Any] = []
        base: list[Any] = []
        ops: set[str] = set()
        plan = plan_passes(dm, x, tuple(x.shape[1:]), self.params.max_batch, kind="deeplift")
        for rows in plan.row_passes(x.shape[0], n_refs):
            xb = x[rows]
            r = xb.shape[0]
            x_rep = xb.repeat_interleave(n_refs, dim=0)
            ref_rep = refs.repeat(r, *([1] * (refs.dim() - 1)))
            index = target_index(targets, rows, x.device).repeat_interleave(n_refs, dim=0)
            grads, selected, used = deeplift_gradients(dm, module, x_rep, ref_rep, index,
                                                       self.params.eps, self.name,
                                                       self.params.maxpool)
            contrib = (x_rep - ref_rep).unsqueeze(-1) * grads
            values.append(contrib.reshape(r, n_refs, *contrib.shape[1:]).mean(1))
            base.append(selected[x_rep.shape[0]:].reshape(r, n_refs, -1).mean(1))
            ops |= used
        return Attribution(values=to_numpy(torch.cat(values)),
                           base_values=to_numpy(torch.cat(base)),
                           metadata={"n_background": int(n_refs), "rule": "rescale",
                                     "maxpool": self.params.maxpool},
                           handoff=Handoff(inexact_ops=tuple(ops)))


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``shap.deep``."""
    registry.add(DeepShap)
