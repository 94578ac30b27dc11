"""DeepLIFT (``deeplift``): contributions of input differences from a reference input.

Shrikumar, Greenside and Kundaje 2017, "Learning Important Features Through Propagating
Activation Differences" (ICML), with the Rescale rule. The rules, the allow-list of modules and
the refusals live in :mod:`.deeplift_rules`; this module holds the explainer: it builds the
reference (zero, the background mean or given values), runs the rows and their references
through the rules in blocks of ``max_batch`` and returns ``(x - x') * multipliers``, whose sum
over the features is ``f(x) - f(x')`` (exactly, except through softmax and layer
normalisation, listed in ``handoff.inexact_ops``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

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
from xaudit.plugins._support.paths import make_baseline
from xaudit.plugins.deep.deeplift_rules import RuleParams, deeplift_gradients, prepare
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class DeepLiftParams(RuleParams):
    """Parameters of ``deeplift``."""

    baseline: Literal["zero", "mean", "given"] = "zero"
    """Reference input: all zeros, the background mean, or ``baseline_values``."""
    baseline_values: float | list[Any] | None = None
    """For ``given``: a number, one row, or one row per explained row (nested lists)."""
    max_batch: int | None = Field(None, gt=0)
    """Rows explained per forward (the forward holds twice as many: rows and references).
    Default: sized to the model and machine (as gradient.integrated)."""


class DeepLift(Explainer):
    """DeepLIFT with the Rescale rule against one reference input."""

    name = "deeplift"
    summary = "DeepLIFT (Rescale rule): contributions of input differences from a reference."
    description = (
        "Compares each row with a reference input (zeros, the background mean or given values) "
        "and propagates the difference of activations backwards with the Rescale rule: a unit's "
        "multiplier is the difference of its output divided by the difference of its input. A "
        "feature's value is (x - x') times its multiplier, and a row's values add up to f(x) - "
        "f(x'), exactly for operations with an exact rule; softmax and layer normalisation are "
        "approximated and reported as inexact.")
    paper = ("Shrikumar, Greenside and Kundaje 2017, Learning Important Features Through "
             "Propagating Activation Differences")
    limitations = (
        "Needs the model's torch module; only the listed layers and operations are supported "
        "and anything else is refused by name.",
        "Sums exactly to f(x) - f(reference) except through softmax and layer normalisation "
        "(listed in handoff.inexact_ops when used); explain the logits for exactness.",
        "Depends on the reference; Rescale ignores interactions inside a non-linearity "
        "(the RevealCancel rule is not implemented).",
    )
    Params = DeepLiftParams
    params: DeepLiftParams
    requires = frozenset({"gradients"})
    modalities = frozenset({"tabular", "image", "sequence", "other"})
    additive = True
    default_target = "predicted"

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Values ``(x - x') * m`` ``(n, *feature_shape, k)``; base values ``f(x')``."""
        torch = require_torch(self.name)
        dm, module = prepare(model, self.name)
        x = input_tensor(dm, X)
        reference = make_baseline(self.params.baseline, X, background, rng,
                                  given=self.params.baseline_values)
        ref_all = input_tensor(dm, reference)
        values, base, ops = [], [], set()
        plan = plan_passes(dm, x, tuple(x.shape[1:]), self.params.max_batch, kind="deeplift")
        for rows in plan.row_passes(x.shape[0]):
            xb = x[rows]
            refb = ref_all.expand_as(xb) if ref_all.shape[0] == 1 else ref_all[rows]
            index = target_index(targets, rows, x.device)
            grads, selected, used = deeplift_gradients(dm, module, xb, refb, index,
                                                       self.params.eps, self.name,
                                                       self.params.maxpool)
            values.append((xb - refb).unsqueeze(-1) * grads)
            base.append(selected[xb.shape[0]:])
            ops |= used
        value_array = to_numpy(torch.cat(values))
        base_array = to_numpy(torch.cat(base))
        return Attribution(values=value_array, base_values=base_array,
                           metadata={"baseline": self.params.baseline, "rule": "rescale",
                                     "maxpool": self.params.maxpool},
                           handoff=Handoff(inexact_ops=tuple(ops)))


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``deeplift``."""
    registry.add(DeepLift)
