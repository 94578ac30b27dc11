"""Neuron conductance: how much each input feature contributes through one hidden unit.

Dhamdhere, Sundararajan and Yan 2018, "How Important Is a Neuron?" (ICLR 2019), equation 3:
for unit ``y`` of a layer, input feature ``i`` and the straight path
``x_s = x' + alpha_s (x - x')`` from the baseline ``x'``,

    ``Cond^y_i(x) = (x_i - x'_i) * sum_s w_s dF/dy(x_s) * dy/dx_i(x_s)``

with the path points and weights of ``path_method`` (Gauss-Legendre by default). Summed
over all units of a layer it gives integrated gradients;
summed over the inputs it gives the unit's layer conductance. Values are over the input's
features, ``(n, *feature_shape, k)``; ``metadata`` names the layer and the unit. For a layer
returning a tuple of tensors, ``element`` says which tensor holds the unit (as a neuron
selector function picks it in Captum).
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
    require_torch,
    select_targets,
    target_index,
    to_numpy,
)
from xaudit.plugins._support.pass_size import plan_passes
from xaudit.plugins._support.paths import INTERPOLABLE, PathMethod, path_endpoints, path_rule
from xaudit.plugins._support.torch_hooks import LayerHook, layered
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class NeuronConductanceParams(PluginParams):
    """Parameters of ``neuron.conductance``."""

    layer: str
    """Layer holding the unit (a ``named_modules`` name)."""
    neuron: list[int] = Field(min_length=1)
    """Index of the unit in the layer's output of one row (e.g. ``[3]`` or ``[5, 1, 2]``)."""
    element: int | None = Field(None, ge=0)
    """For a layer returning a tuple of tensors: which tensor holds the unit (counting the
    tuple's tensors, ``None`` elements skipped); needed then, ignored for a single tensor."""
    n_steps: int = Field(50, gt=1, le=100_000)
    """Points on the path from the baseline to the input."""
    path_method: PathMethod = "gausslegendre"
    """Integration points and weights. The trapezoid rule here has weights summing to one;
    Captum's ``riemann_trapezoid`` weights sum to ``(n - 1) / n``, so its results are ours
    times ``(n - 1) / n`` for that rule (the other rules agree)."""
    baseline: Literal["zero", "mean"] = "zero"
    """Baseline input: ``zero`` or the background ``mean``."""
    max_batch: int | None = Field(None, gt=0)
    """Rows times path points per forward pass. Default: sized to the model and machine (as
    gradient.integrated)."""


class NeuronConductance(Explainer):
    """Input attributions through one hidden unit."""

    name = "neuron.conductance"
    summary = "Neuron conductance: each input's contribution flowing through one unit."
    description = (
        "For one unit y of a chosen layer and the straight path from the baseline x' to the row "
        "x, each input feature's value is (x_i - x'_i) times the path integral of dF/dy dy/dx_i: "
        "the part of the integrated gradients that flows through that unit. Summed over the "
        "layer's units it gives integrated gradients; summed over the inputs, the unit's "
        "conductance.")
    paper = "Dhamdhere, Sundararajan and Yan 2018, How Important Is a Neuron?"
    limitations = ("Explains one unit at a time; choose the unit from layer.conductance.",
                   "Needs a floating-point input (not token ids).")
    Params = NeuronConductanceParams
    params: NeuronConductanceParams
    requires = frozenset({"gradients", "layers"})
    modalities = INTERPOLABLE
    default_target = "predicted"

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Values ``(n, *feature_shape, k)`` for the chosen unit."""
        torch = require_torch(self.name)
        lm = layered(model, self.name)
        p = self.params
        layer = lm.layer(p.layer)
        x_all, base_all = path_endpoints(lm, X, background, p.baseline, self.name)
        alphas_np, weights_np = path_rule(p.path_method, p.n_steps)
        alphas = torch.as_tensor(alphas_np, dtype=x_all.dtype, device=x_all.device)
        weights = torch.as_tensor(weights_np, dtype=x_all.dtype, device=x_all.device)
        out = []
        plan = plan_passes(lm, x_all, tuple(x_all.shape[1:]), p.max_batch)
        for rows in plan.row_passes(x_all.shape[0], p.n_steps):
            x, base = x_all[rows], base_all[rows]
            shape = (1, p.n_steps, *([1] * (x.dim() - 1)))
            path = (base.unsqueeze(1) + alphas.view(shape) * (x - base).unsqueeze(1))
            path = path.reshape(-1, *x.shape[1:]).requires_grad_(True)
            grads = self._path_gradients(lm, path, layer, target_index(targets, rows, x.device))
            grads = grads.reshape(x.shape[0], p.n_steps, *grads.shape[1:])
            total = (grads * weights.view(1, -1, *([1] * (grads.dim() - 2)))).sum(1)
            out.append((x - base).unsqueeze(-1) * total)
        return Attribution(values=to_numpy(torch.cat(out)),
                           metadata={"layer": p.layer, "neuron": list(p.neuron),
                                     "element": p.element, "n_steps": p.n_steps,
                                     "path_method": p.path_method})

    def _path_gradients(self, model: Any, path: Any, layer: Any, index: Any) -> Any:
        """``dF/dy * dy/dx`` at every path point: ``(r * steps, *feature_shape, k)``."""
        torch = require_torch(self.name)
        hook = LayerHook(layer, self.params.layer)
        with hook.attached(), torch.enable_grad():
            outputs = model.torch_forward(path)
            if not hook.outputs:
                raise InputError(f"layer {self.params.layer!r} did not run in the forward")
            held = self._element(hook.outputs)
            unit = self._unit(held)
            input_grads = torch.autograd.grad(unit.sum(), path, retain_graph=True)[0]
            selected = select_targets(outputs, index)
            k = selected.shape[1]
            grads = []
            for j in range(k):
                mid = torch.autograd.grad(selected[:, j].sum(), held, retain_graph=j < k - 1,
                                          allow_unused=True)[0]
                mid = torch.zeros_like(held) if mid is None else mid
                mid = self._unit(mid).reshape(-1, *([1] * (path.dim() - 1)))
                grads.append(input_grads * mid)
        return torch.stack(grads, dim=-1)

    def _element(self, outputs: tuple[Any, ...]) -> Any:
        """The layer's output tensor holding the unit (``element`` for a tuple of several)."""
        p = self.params
        if len(outputs) == 1:
            return outputs[0]
        if p.element is None or p.element >= len(outputs):
            given = "" if p.element is None else f" (element {p.element} is out of range)"
            raise InputError(f"layer {p.layer!r} returns a tuple of {len(outputs)} tensors "
                             f"shaped {[tuple(t.shape[1:]) for t in outputs]} per row{given}; "
                             "name the one holding the unit with element: 0 .. "
                             f"{len(outputs) - 1}")
        return outputs[p.element]

    def _unit(self, tensor: Any) -> Any:
        neuron = tuple(self.params.neuron)
        if len(neuron) != tensor.dim() - 1 or any(
                not 0 <= i < s for i, s in zip(neuron, tensor.shape[1:], strict=True)):
            raise InputError(f"neuron {list(neuron)} is not an index of layer "
                             f"{self.params.layer!r}, whose output is shaped "
                             f"{tuple(tensor.shape[1:])} per row")
        return tensor[(slice(None), *neuron)]


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``neuron.conductance``."""
    registry.add(NeuronConductance)
