"""Grad-CAM and Grad-CAM++: class activation maps from a convolutional layer's gradients.

Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization" (ICCV): with ``A`` the layer's output ``(C, h, w)`` and ``g = dy/dA`` for the
targeted output ``y``, the map is ``ReLU(sum_c w_c A_c)`` with ``w_c = mean_ij g_cij``.

Chattopadhay et al. 2018, "Grad-CAM++: Improved Visual Explanations for Deep Convolutional
Networks" (WACV): ``w_c = sum_ij a_cij ReLU(g_cij)`` with
``a_cij = g_cij^2 / (2 g_cij^2 + sum_ab A_cab g_cij^3)`` (0 where ``g_cij = 0``), the closed form
the paper derives for an exponential output, as commonly implemented.

The map is upsampled to the input's height and width (bilinear, ``align_corners=False``, as
Captum's ``LayerAttribution.interpolate``) and the same map is given to every input channel,
so values are ``(n, C, H, W, k)`` like the input rows. The default layer is the last
``Conv2d`` the forward runs. Only the part of the forward after the layer records a graph.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins._support.autograd import (
    input_tensor,
    require_torch,
    target_index,
    to_numpy,
)
from xaudit.plugins._support.pass_size import plan_passes
from xaudit.plugins._support.torch_hooks import (
    last_conv_layer,
    layer_gradients,
    layered,
    single_tensor,
)
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class GradCamParams(PluginParams):
    """Parameters of ``gradcam`` and ``gradcam.plusplus``."""

    layer: str | None = None
    """Layer name (``named_modules`` name, e.g. ``conv3``); default: the last Conv2d run."""
    relu: bool = True
    """Keep only positive evidence (the papers' ReLU); False gives Captum's default."""
    interpolation: Literal["bilinear", "nearest", "bicubic"] = "bilinear"
    """How the layer-sized map is resized to the input's height and width."""
    max_batch: int | None = Field(None, gt=0)
    """Rows per forward and backward pass. Default: sized to the model and machine (as
    gradient.integrated)."""


class GradCam(Explainer):
    """Gradient-weighted class activation map of a convolutional layer."""

    name = "gradcam"
    summary = "Grad-CAM: layer activations weighted by average gradients, upsampled."
    description = (
        "With A the chosen convolutional layer's activations (channels x height x width) and g "
        "the gradient of the explained output with respect to A, each channel is weighted by the "
        "mean of its gradient over the layer's positions; the map is ReLU of the weighted sum of "
        "the channels, upsampled to the input's height and width and given to every input "
        "channel.")
    paper = ("Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks via "
             "Gradient-based Localization")
    limitations = (
        "Resolution is that of the chosen layer; the upsampled map is coarse.",
        "Not additive: the map's scale is not comparable with the output's.",
        "The same map is repeated on every input channel.",
    )
    Params = GradCamParams
    params: GradCamParams
    requires = frozenset({"gradients", "layers"})
    modalities = frozenset({"image"})
    default_target = "predicted"
    finds_predicted = True  # from the forward that records the layer (one pass, not two)
    variant = "gradcam"

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Maps ``(n, C, H, W, k)`` (one map per targeted output, repeated over channels)."""
        torch = require_torch(self.name)
        lm = layered(model, self.name)
        if X.ndim != 4:
            raise InputError(f"{self.name} needs image rows (C, H, W); got rows shaped "
                             f"{X.shape[1:]}")
        x_all = input_tensor(lm, X)
        name = self.params.layer or last_conv_layer(lm, x_all)
        layer = lm.layer(name)
        maps = []
        plan = plan_passes(lm, x_all, tuple(x_all.shape[1:]), self.params.max_batch)
        for rows in plan.row_passes(x_all.shape[0]):
            x = x_all[rows]
            index = target_index(targets, rows, x.device)
            acts, grads_of, _ = layer_gradients(lm, x, layer, name, index, cut=True)
            act, grads = single_tensor(acts, name, self.name), grads_of[0]
            if act.dim() != 4:
                raise InputError(f"{self.name} needs a layer with (C, h, w) outputs; layer "
                                 f"{name!r} gives {tuple(act.shape[1:])}")
            with torch.no_grad():
                cam = torch.einsum("rchw,rck->rkhw", act, self._weights(act, grads))
                if self.params.relu:
                    cam = cam.clamp_min(0)
                cam = torch.nn.functional.interpolate(
                    cam, size=tuple(X.shape[2:]), mode=self.params.interpolation,
                    **({} if self.params.interpolation == "nearest" else
                       {"align_corners": False}))
            maps.append(cam)
        cams = torch.cat(maps).permute(0, 2, 3, 1).unsqueeze(1)  # (n, 1, H, W, k)
        values = to_numpy(cams.expand(-1, X.shape[1], -1, -1, -1))
        return Attribution(values=values, metadata={"layer": name, "variant": self.variant,
                                                    "relu": self.params.relu,
                                                    "interpolation": self.params.interpolation})

    @staticmethod
    def _weights(act: Any, grads: Any) -> Any:
        """Channel weights ``(r, C, k)``: the spatial mean of the gradients."""
        return grads.mean(dim=(2, 3))


class GradCamPlusPlus(GradCam):
    """Grad-CAM++: positive gradients weighted by the closed-form coefficients ``a_cij``."""

    name = "gradcam.plusplus"
    summary = "Grad-CAM++: higher-order weighting of positive gradients, upsampled."
    description = (
        "As Grad-CAM, but each channel's weight sums the positive gradients over the layer's "
        "positions with coefficients built from second- and third-order gradient terms, so that "
        "several regions that raise the output each contribute to the map; the map is ReLU of the "
        "weighted sum of the channels, upsampled to the input's height and width.")
    paper = ("Chattopadhay et al. 2018, Grad-CAM++: Improved Visual Explanations for Deep "
             "Convolutional Networks")
    variant = "gradcam.plusplus"

    @staticmethod
    def _weights(act: Any, grads: Any) -> Any:
        torch = require_torch("gradcam++")
        g2 = grads * grads
        g3 = g2 * grads
        sums = act.sum(dim=(2, 3))[:, :, None, None, None]
        denom = 2 * g2 + sums * g3
        alpha = torch.where(grads != 0, g2 / torch.where(denom != 0, denom,
                                                         torch.ones_like(denom)), 0.0)
        return (alpha * grads.clamp_min(0)).sum(dim=(2, 3))


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``gradcam`` and ``gradcam.plusplus`` (Grad-CAM++)."""
    registry.add(GradCam)
    registry.add(GradCamPlusPlus)
