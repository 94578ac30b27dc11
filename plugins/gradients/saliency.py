"""Vanilla gradients (saliency maps) and input x gradient.

* ``gradient.saliency``: ``d f_c(x) / d x_i``, by default its absolute value (Simonyan, Vedaldi
  and Zisserman 2014, "Deep Inside Convolutional Networks: Visualising Image Classification
  Models and Saliency Maps").
* ``gradient.input_x_gradient``: ``x_i * d f_c(x) / d x_i`` (Shrikumar et al. 2016, "Not Just
  a Black Box: Learning Important Features Through Propagating Activation Differences"; for a
  ReLU network without biases it equals epsilon-LRP, Ancona et al. 2018).

One forward and one backward pass per targeted output per block of ``max_batch`` rows (without
it, blocks sized to the model: :mod:`~xaudit.plugins._support.pass_size`).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
from pydantic import Field

from xaudit.explanation import Attribution
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins._support.autograd import (
    float_inputs,
    input_gradients,
    input_tensor,
    target_index,
    to_numpy,
)
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class SaliencyParams(PluginParams):
    """Parameters of ``gradient.saliency``."""

    absolute: bool = True
    """Return |gradient| (the saliency map of Simonyan et al.); false keeps the sign."""
    max_batch: int | None = Field(None, gt=0)
    """Most rows in one forward/backward pass. Default: sized to the model and machine
    (as gradient.integrated)."""


class InputXGradientParams(PluginParams):
    """Parameters of ``gradient.input_x_gradient``."""

    max_batch: int | None = Field(None, gt=0)
    """Most rows in one forward/backward pass. Default: sized to the model and machine
    (as gradient.integrated)."""


class _InputGradientMap(Explainer):
    """What saliency and input x gradient share: the input gradients of the targeted outputs,
    then a per-method :meth:`finish`."""

    requires = frozenset({"gradients"})
    modalities = frozenset({"tabular", "image", "sequence"})
    default_target = "predicted"
    params: SaliencyParams | InputXGradientParams

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """The map ``(n, *shape, k)`` (see :meth:`finish`)."""
        net = float_inputs(model, self.name)
        x = input_tensor(net, X)
        grads = input_gradients(net, x, target_index(targets, slice(None), x.device),
                                self.params.max_batch)
        return self.finish(grads, x)

    @abstractmethod
    def finish(self, grads: Any, x: Any) -> Attribution:
        """The attribution from the gradients ``(k, n, *shape)`` of the inputs ``x``."""


class Saliency(_InputGradientMap):
    """The gradient of the targeted output with respect to each input value."""

    name = "gradient.saliency"
    row_parallel = True
    summary = "Saliency map: the (absolute) gradient of the output with respect to the input."
    description = (
        "The gradient of the explained output with respect to each input value, df(x)/dx_i, by "
        "default its absolute value: how strongly a small change of that value at the row itself "
        "moves the output.")
    paper = ("Simonyan, Vedaldi and Zisserman 2014, Deep Inside Convolutional Networks: "
             "Visualising Image Classification Models and Saliency Maps")
    limitations = (
        "A local, first-order sensitivity: it says how the output would move for a tiny "
        "change, not how much a feature contributed to the output.",
        "Gradients of ReLU networks are noisy and can saturate (zero where the output is flat).",
    )
    Params = SaliencyParams
    params: SaliencyParams

    def finish(self, grads: Any, x: Any) -> Attribution:
        """Gradients, absolute values unless ``absolute`` is false."""
        return Attribution(values=to_numpy(grads.movedim(0, -1), self.params.absolute),
                           metadata={"absolute": self.params.absolute})


class InputXGradient(_InputGradientMap):
    """The input times the gradient of the targeted output."""

    name = "gradient.input_x_gradient"
    summary = "Input x gradient: each input value times the output's gradient there."
    description = (
        "Each input value multiplied by the gradient of the explained output with respect to it, "
        "x_i df(x)/dx_i. For a ReLU network without biases this equals epsilon-LRP.")
    paper = ("Shrikumar, Greenside, Shcherbina and Kundaje 2016, Not Just a Black Box: "
             "Learning Important Features Through Propagating Activation Differences")
    limitations = (
        "A first-order approximation around x with an implicit zero baseline: features whose "
        "value is 0 always get 0.",
        "Does not add up to the output except for linear models without intercept.",
    )
    Params = InputXGradientParams
    params: InputXGradientParams

    def finish(self, grads: Any, x: Any) -> Attribution:
        """``x * gradient``."""
        return Attribution(values=to_numpy(grads.mul_(x.unsqueeze(0)).movedim(0, -1)))


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``gradient.saliency`` and ``gradient.input_x_gradient``."""
    registry.add(Saliency)
    registry.add(InputXGradient)
