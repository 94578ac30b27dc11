"""Layer attributions: activations, conductance and integrated gradients at a named layer.

- ``layer.activations``: the layer's output, the same for every targeted output.
- ``layer.conductance`` (Dhamdhere, Sundararajan and Yan 2018, "How Important Is a Neuron?"):
  the flow of integrated gradients through each unit ``y_j`` of the layer,
  ``sum_s dF/dy_j(x_s) (y_j(x_{s+1}) - y_j(x_s))`` along ``x_s = x' + alpha_s (x - x')``
  (``n_steps + 1`` points; Captum's discretisation, Gauss-Legendre points by default).
- ``layer.integrated``: integrated gradients (Sundararajan, Taly and Yan 2017) in the layer's
  output space, ``(a - a') * sum_s w_s dF/da(a' + alpha_s (a - a'))``, with ``a`` the layer's
  output for the row and ``a'`` for the baseline input (or zero). On a text model's embedding
  layer, summing over the embedding dimension gives one attribution per token.

Values are per layer unit, ``(n, *layer_shape, k)`` (``(n, seq_len, k)`` for summed token
attributions), named ``layer[i,j]`` (or ``token_i``) in ``metadata["feature_names"]``;
``metadata["layer"]`` names the layer and ``metadata["scope"]`` is ``"layer"``.

A layer that returns a tuple of tensors (a recurrent layer's output and state, a block's
hidden states and attention) is attributed at every tensor, as Captum's layer methods are
(``None`` elements carry nothing and are skipped): the ``e``-th tensor's units are flattened
and laid side by side, ``(n, U, k)`` with ``U`` the units of all tensors, named
``layer#e[i,j]``, and ``metadata["layer_outputs"]`` lists each tensor's ``name``
(``layer#e``), ``shape``, ``offset`` and ``size`` in that axis. A tuple holding one tensor is
read like a tensor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from xaudit.batching import row_blocks
from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import MODALITIES, LayeredModel, Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins._support.autograd import (
    fast_memory_format,
    require_torch,
    target_index,
    to_numpy,
)
from xaudit.plugins._support.pass_size import forward_rows, plan_passes
from xaudit.plugins._support.paths import INTERPOLABLE, PathMethod, path_endpoints, path_rule
from xaudit.plugins._support.torch_hooks import LayerHook, layer_gradients, layered
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


def unit_names(layer: str, shape: tuple[int, ...]) -> list[str]:
    """``layer[i,j,...]`` for every unit of a layer output shaped ``shape`` (C order)."""
    return [f"{layer}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


def layer_output(model: LayeredModel, layer: Any, name: str, x: Any) -> tuple[Any, ...]:
    """The layer's output tensors on ``x`` (no graph): one, or each tensor of a tuple."""
    torch = require_torch("layer methods")
    hook = LayerHook(layer, name)
    with hook.attached(), torch.no_grad():
        model.torch_forward(x)
    if not hook.outputs:
        raise InputError(f"layer {name!r} did not run in the model's forward")
    return tuple(t.detach() for t in hook.outputs)


def laid_side_by_side(values: tuple[np.ndarray, ...],
                      layer: str) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
    """Per-tensor values ``(n, *shape_e, k)`` flattened side by side ``(n, U, k)``, with the
    unit names ``layer#e[...]`` and each tensor's slot (name, shape, offset, size)."""
    n, k = values[0].shape[0], values[0].shape[-1]
    names: list[str] = []
    slots: list[dict[str, Any]] = []
    for e, array in enumerate(values):
        shape = list(array.shape[1:-1])
        slots.append({"name": f"{layer}#{e}", "shape": shape, "offset": len(names),
                      "size": int(np.prod(shape))})
        names += unit_names(f"{layer}#{e}", tuple(shape))
    return np.concatenate([a.reshape(n, -1, k) for a in values], axis=1), names, slots


class LayerParams(PluginParams):
    """Parameters of ``layer.activations``."""

    layer: str
    """Layer name (a ``named_modules`` name such as ``network.2`` or ``conv3``)."""
    max_batch: int | None = Field(None, gt=0)
    """Rows per forward pass. Default: as many as hold 2**23 input values."""


class PathParams(LayerParams):
    """Parameters of ``layer.conductance``."""

    n_steps: int = Field(50, gt=1, le=100_000)
    """Points on the path from the baseline to the input."""
    path_method: PathMethod = "gausslegendre"
    """Integration points: Gauss-Legendre or a Riemann rule (as Captum's ``method``)."""
    baseline: Literal["zero", "mean"] = "zero"
    """Baseline input: zeros (token id 0 for text), or the background mean."""
    max_batch: int | None = Field(None, gt=0)
    """Rows times path points per forward pass. Default: sized to the model and machine (as
    gradient.integrated)."""


class LayerIntegratedParams(PathParams):
    """Parameters of ``layer.integrated``."""

    layer: str | None = None  # type: ignore[assignment]
    """Layer name; default: the first ``nn.Embedding`` (text models)."""
    layer_baseline: Literal["input", "zero"] = "input"
    """``input``: the layer's output on the baseline input (Captum); ``zero``: zeros."""
    sum_last: bool | None = None
    """Sum over the layer's last axis (embedding dimension); default: yes for token inputs."""
    tokens: list[list[str]] | None = None
    """Tokens of each explained row, handed to the report in ``handoff.tokens``."""


class LayerBase(Explainer):
    """Shared negotiation and result packing of the layer explainers."""

    name = "layer.base"
    requires = frozenset({"gradients", "layers"})
    modalities = MODALITIES
    default_target = "predicted"
    params: LayerParams

    def result(self, values: tuple[Any, ...], layer: str,
               tokens: list[list[str]] | None = None, **meta: Any) -> Attribution:
        """An Attribution of the layer's output tensors' values (one array per tensor), with
        layer-unit names, the layer's metadata and the rows' tokens."""
        arrays = tuple(to_numpy(v) for v in values)
        if len(arrays) == 1:
            array = arrays[0]
            names = meta.pop("feature_names", None) or unit_names(layer, array.shape[1:-1])
        else:
            array, names, meta["layer_outputs"] = laid_side_by_side(arrays, layer)
        handoff = Handoff(tokens=None if tokens is None else tuple(map(tuple, tokens)))
        return Attribution(values=array, metadata={"layer": layer, "scope": "layer",
                                                   "feature_names": names, **meta},
                           handoff=handoff)


class LayerActivations(LayerBase):
    """The layer's output for each row."""

    name = "layer.activations"
    summary = "Activations of a named layer (target-independent)."
    description = (
        "The chosen layer's output for each row, unit by unit, the same for every explained "
        "output: what the layer computes, not how much each unit contributes to the output.")
    paper = "Erhan et al. 2009, Visualizing Higher-Layer Features of a Deep Network"
    limitations = ("Activations are not attributions: they do not depend on the target and "
                   "say nothing about the effect on the output.",)
    Params = LayerParams
    conformance_opt_outs: ClassVar[Mapping[str, str]] = {
        "outputs_are_told_apart": "activations do not depend on the output (by definition: "
                                  "the same values for every slot)"}

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Activations ``(n, *layer_shape, k)``, repeated over the ``k`` slots."""
        torch = require_torch(self.name)
        lm = layered(model, self.name)
        layer = lm.layer(self.params.layer)
        x = lm.to_tensors(X)[0].detach()
        blocks = [layer_output(lm, layer, self.params.layer, x[rows])
                  for rows in row_blocks(x.shape[0], forward_rows(self.params.max_batch,
                                                                  tuple(x.shape[1:])))]
        acts = (torch.cat(parts) for parts in zip(*blocks, strict=True))
        return self.result(tuple(a.unsqueeze(-1).expand(*a.shape, targets.n_slots)
                                 for a in acts), self.params.layer)


class LayerConductance(LayerBase):
    """Conductance of each unit of a layer (Dhamdhere et al. 2018)."""

    name = "layer.conductance"
    summary = "Layer conductance: integrated gradients flowing through each layer unit."
    description = (
        "The flow of integrated gradients through each unit of the chosen layer: along the "
        "straight path from the baseline input to the row, the sum over the path's points of the "
        "output's gradient with respect to the unit times the change of the unit's activation "
        "between consecutive points. Summed over the layer's units it approximates f(x) - "
        "f(baseline).")
    paper = "Dhamdhere, Sundararajan and Yan 2018, How Important Is a Neuron?"
    limitations = ("Needs a floating-point input to interpolate (not token ids).",
                   "Sums over the layer to the integrated-gradients total only as the number "
                   "of steps grows.")
    Params = PathParams
    params: PathParams
    modalities = INTERPOLABLE

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Conductance ``(n, *layer_shape, k)``."""
        torch = require_torch(self.name)
        lm = layered(model, self.name)
        layer, p = lm.layer(self.params.layer), self.params
        x_all, base_all = path_endpoints(lm, X, background, p.baseline, self.name)
        alphas = torch.as_tensor(path_rule(p.path_method, p.n_steps + 1)[0], dtype=x_all.dtype,
                                 device=x_all.device)
        steps = alphas.shape[0]
        layout = fast_memory_format(lm, x_all)
        out = []
        plan = plan_passes(lm, x_all, tuple(x_all.shape[1:]), p.max_batch)
        for rows in plan.row_passes(x_all.shape[0], steps):
            x, base = x_all[rows], base_all[rows]
            shape = (1, steps, *([1] * (x.dim() - 1)))
            path = (base.unsqueeze(1) + alphas.view(shape) * (x - base).unsqueeze(1))
            acts, grads_of, _ = layer_gradients(
                lm, _laid_out(path.reshape(-1, *x.shape[1:]), layout), layer, p.layer,
                target_index(targets, rows, x.device), cut=True)
            block = []
            for act, grads in zip(acts, grads_of, strict=True):  # each output tensor
                act = act.detach().reshape(x.shape[0], steps, *act.shape[1:])
                grads = grads.reshape(x.shape[0], steps, *grads.shape[1:])
                diffs = (act[:, 1:] - act[:, :-1]).unsqueeze(-1)
                block.append((grads[:, :-1] * diffs).sum(1))
            out.append(block)
        return self.result(tuple(torch.cat(parts) for parts in zip(*out, strict=True)),
                           p.layer, n_steps=p.n_steps, path_method=p.path_method)


class LayerIntegrated(LayerBase):
    """Integrated gradients in a layer's output space (token attributions on embeddings)."""

    name = "layer.integrated"
    summary = "Integrated gradients at a layer (e.g. an embedding: one value per token)."
    description = (
        "Integrated gradients in the chosen layer's output space: (a - a') times the path "
        "integral of the output's gradient with respect to the layer's activations between a' "
        "(the layer's output on the baseline input, or zero) and a (its output on the row). On a "
        "text model's embedding layer, summing over the embedding dimension gives one value per "
        "token.")
    paper = ("Sundararajan, Taly and Yan 2017, Axiomatic Attribution for Deep Networks; "
             "Captum's LayerIntegratedGradients")
    limitations = ("Depends on the baseline; a zero-id (padding) baseline is a convention, "
                   "not a neutral input.",)
    Params = LayerIntegratedParams
    params: LayerIntegratedParams

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Values ``(n, *layer_shape, k)``, or ``(n, seq_len, k)`` summed over embeddings."""
        torch = require_torch(self.name)
        lm = layered(model, self.name)
        p = self.params
        name = p.layer or _first_embedding(lm)
        layer = lm.layer(name)
        x_all, base_all = path_endpoints(lm, X, background, p.baseline)
        alphas_np, weights_np = path_rule(p.path_method, p.n_steps)
        layout = fast_memory_format(lm, x_all)
        out = []
        plan = plan_passes(lm, x_all, tuple(x_all.shape[1:]), p.max_batch)
        for rows in plan.row_passes(x_all.shape[0], p.n_steps):
            x = x_all[rows]
            a_x = layer_output(lm, layer, name, x)
            a_b = (tuple(torch.zeros_like(a) for a in a_x) if p.layer_baseline == "zero"
                   else layer_output(lm, layer, name, base_all[rows]))
            paths = tuple(_interpolated(a, b, alphas_np, p.n_steps) for a, b in zip(
                a_x, a_b, strict=True))
            repeated = _laid_out(x.repeat_interleave(p.n_steps, dim=0), layout)
            _, grads_of, _ = layer_gradients(lm, repeated, layer,
                                             name, target_index(targets, rows, x.device),
                                             replace=paths)
            block = []
            for a, b, grads in zip(a_x, a_b, grads_of, strict=True):  # each output tensor
                grads = grads.reshape(x.shape[0], p.n_steps, *grads.shape[1:])
                weights = torch.as_tensor(weights_np, dtype=grads.dtype, device=grads.device)
                total = (grads * weights.view(1, -1, *([1] * (grads.dim() - 2)))).sum(1)
                block.append((a - b).unsqueeze(-1) * total)
            out.append(block)
        values = tuple(torch.cat(parts) for parts in zip(*out, strict=True))
        integer = not x_all.is_floating_point()
        sum_last = integer if p.sum_last is None else p.sum_last
        meta: dict[str, Any] = {"n_steps": p.n_steps, "path_method": p.path_method,
                                "layer_baseline": p.layer_baseline, "summed_last": sum_last}
        if sum_last:
            values = tuple(v.sum(dim=-2) for v in values)
            if len(values) == 1:
                meta["feature_names"] = [f"token_{i}" for i in range(values[0].shape[1])]
        return self.result(values, name, p.tokens, **meta)


def _interpolated(a_x: Any, a_b: Any, alphas: np.ndarray, steps: int) -> Any:
    """Points ``a_b + alpha (a_x - a_b)`` of each row, rows major: ``(r * steps, *shape)``,
    a leaf requiring grad."""
    torch = require_torch("layer.integrated")
    alpha = torch.as_tensor(alphas, dtype=a_x.dtype, device=a_x.device)
    shape = (1, steps, *([1] * (a_x.dim() - 1)))
    path = a_b.unsqueeze(1) + alpha.view(shape) * (a_x - a_b).unsqueeze(1)
    return path.reshape(-1, *a_x.shape[1:]).requires_grad_(True)


def _laid_out(x: Any, layout: Any) -> Any:
    """``x`` in the memory format ``layout`` (channels-last for CPU convolutions), or as is."""
    return x if layout is None else x.contiguous(memory_format=layout)


def _first_embedding(model: LayeredModel) -> str:
    torch = require_torch("layer.integrated")
    for name in model.layer_names():
        if isinstance(model.layer(name), torch.nn.Embedding):
            return name
    raise InputError(f"model {model.name!r} has no nn.Embedding layer; name the layer with "
                     "the 'layer' parameter")


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``layer.activations``, ``layer.conductance`` and ``layer.integrated``."""
    registry.add(LayerActivations)
    registry.add(LayerConductance)
    registry.add(LayerIntegrated)
