"""Attention rollout and gradient-weighted attention for transformer models.

- ``attention.rollout`` (Abnar and Zuidema 2020, "Quantifying Attention Flow in Transformers",
  ACL): per layer ``l`` the heads' attention ``A_l`` (fused by mean, max or min over heads) is
  mixed with the identity for the residual connection, ``B_l = (1 - r) A_l + r I`` with rows
  renormalised to sum to one, and ``R = B_L ... B_2 B_1``. A token's value is
  ``R[q, token]`` for the query token ``q`` (``[CLS]``, position 0, by default). It does not
  depend on the target.
- ``attention.gradient`` (Chefer, Gur and Wolf 2021, "Generic Attention-model Explainability
  for Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV, eq. 5-6): per layer,
  ``Abar_l = mean_h (dy/dA_l * A_l)^+`` for the targeted output ``y``, and
  ``R <- R + Abar_l R`` from ``R = I``; a token's value is ``R[q, token]``.

The attention weights are read with forward hooks on the modules that return them: by default
every module whose output is a tuple with a ``(n, heads, s, s)`` tensor at ``weights_index``
(Hugging Face attention modules return ``(context, weights)``; load such models with
``attn_implementation="eager"``, since fused SDPA/flash kernels return no weights). Values are
``(n, s, k)``, one per token, named ``token_i``.

Attention weights are not attributions (Jain and Wallace 2019; Serrano and Smith 2019): a
caveat saying so is handed to the report in ``handoff.caveats``.
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
from xaudit.model import LayeredModel, Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins._support.autograd import (
    require_torch,
    select_targets,
    target_index,
    to_numpy,
)
from xaudit.plugins._support.torch_hooks import layered, torch_module
from xaudit.registry import Registry
from xaudit.targets import TargetSelection

CAVEAT = ("Attention weights are not attributions: they show where the model's attention "
          "heads look, not how much each token changes the output (Jain and Wallace 2019, "
          "'Attention is not Explanation'; Serrano and Smith 2019). Use gradient or "
          "perturbation methods (layer.integrated on the embedding layer, occlusion) for "
          "claims about importance.")


class AttentionParams(PluginParams):
    """Parameters of ``attention.rollout`` and ``attention.gradient``."""

    layers: list[str] | None = None
    """Modules returning attention weights, in forward order; default: detected."""
    weights_index: int = Field(1, ge=0)
    """Element of those modules' output tuple holding the weights ``(n, heads, s, s)``."""
    query_token: int = 0
    """Row of the relevance matrix reported: the token whose view is explained ([CLS])."""
    head_fusion: Literal["mean", "max", "min"] = "mean"
    """How the heads of a layer are combined (rollout only; the gradient method averages)."""
    residual: float = Field(0.5, ge=0.0, le=1.0)
    """Weight of the identity (residual connection) in each layer's mixing (rollout only)."""
    tokens: list[list[str]] | None = None
    """Tokens of each explained row, handed to the report in ``handoff.tokens``."""
    max_batch: int = Field(64, gt=0)
    """Rows per forward pass."""


class _Capture:
    """Forward hooks keeping the attention weights of each named module (once per forward)."""

    def __init__(self, modules: list[tuple[str, Any]], index: int) -> None:
        self.modules, self.index = modules, index
        self.weights: dict[str, Any] = {}
        self.handles: list[Any] = []

    def __enter__(self) -> _Capture:
        for name, module in self.modules:
            self.handles.append(module.register_forward_hook(
                lambda m, i, out, name=name: self._keep(name, out)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()

    def _keep(self, name: str, output: Any) -> None:
        if name in self.weights:
            raise InputError(f"attention module {name!r} runs more than once in a forward")
        weights = _weights_of(output, self.index)
        if weights is None:
            raise InputError(
                f"module {name!r} returned no attention weights at position {self.index} of "
                "its output; for Hugging Face models load with attn_implementation='eager' "
                "(SDPA and flash attention return none), or set weights_index")
        self.weights[name] = weights

    def ordered(self) -> list[Any]:
        """The captured weights in the order of ``modules``."""
        missing = [name for name, _ in self.modules if name not in self.weights]
        if missing:
            raise InputError(f"attention module(s) {', '.join(missing)} did not run")
        return [self.weights[name] for name, _ in self.modules]


def _weights_of(output: Any, index: int) -> Any:
    """``output[index]`` when it is an ``(n, heads, s, s)`` tensor, else ``None``."""
    torch = require_torch("attention")
    if not isinstance(output, tuple | list) or len(output) <= index:
        return None
    weights = output[index]
    if (isinstance(weights, torch.Tensor) and weights.dim() == 4
            and weights.shape[-1] == weights.shape[-2]):
        return weights
    return None


def attention_modules(model: LayeredModel, x: Any, params: AttentionParams) -> list[
        tuple[str, Any]]:
    """The named modules returning attention weights, in forward order."""
    torch = require_torch("attention")
    if params.layers:
        return [(name, model.layer(name)) for name in params.layers]
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def look(name: str, module: Any, output: Any) -> None:
        weights = _weights_of(output, params.weights_index)
        if weights is not None and id(weights) not in seen:  # innermost module first
            seen.add(id(weights))
            found.append((name, module))

    handles = [sub.register_forward_hook(lambda m, i, o, name=name: look(name, m, o))
               for name, sub in torch_module(model, "attention").named_modules() if name]
    try:
        with torch.no_grad():
            model.torch_forward(x[:1])
    finally:
        for handle in handles:
            handle.remove()
    if not found:
        raise InputError(
            f"no module of model {model.name!r} returned attention weights (a tuple with an "
            f"(n, heads, s, s) tensor at position {params.weights_index}); for Hugging Face "
            "models load with attn_implementation='eager', or name the modules with 'layers'")
    return found


class AttentionRollout(Explainer):
    """Attention rollout: attention propagated through the layers with the residual."""

    name = "attention.rollout"
    summary = "Attention rollout: head-fused attention multiplied through the layers."
    description = (
        "Per layer, the attention heads are fused (mean, max or min over heads), mixed with the "
        "identity for the residual connection and renormalised so that each row sums to one; the "
        "layers' matrices are multiplied from the first layer to the last. A token's value is the "
        "product's entry in the row of the query token (position 0, the [CLS] token, by default). "
        "The values do not depend on the explained output.")
    paper = "Abnar and Zuidema 2020, Quantifying Attention Flow in Transformers"
    limitations: ClassVar[tuple[str, ...]] = (
        CAVEAT, "Target-independent: the same values for every output.",
        "Needs modules that return their attention weights (eager attention).")
    Params = AttentionParams
    params: AttentionParams
    requires = frozenset({"gradients", "layers"})
    modalities = frozenset({"text", "sequence", "image", "other"})
    default_target = "predicted"
    gradient = False
    conformance_opt_outs: ClassVar[Mapping[str, str]] = {
        "outputs_are_told_apart": "attention flow does not depend on the output (by "
                                  "definition: the same values for every slot)"}

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Token values ``(n, s, k)``: row ``query_token`` of the relevance matrix."""
        torch = require_torch(self.name)
        lm = layered(model, self.name)
        x_all = lm.to_tensors(X)[0].detach()
        modules = attention_modules(lm, x_all, self.params)
        out = []
        for rows in row_blocks(x_all.shape[0], self.params.max_batch):
            with _Capture(modules, self.params.weights_index) as capture, \
                    torch.set_grad_enabled(self.gradient):
                outputs = lm.torch_forward(x_all[rows])
            relevance = (self._weighted(capture.ordered(), outputs,
                                        target_index(targets, rows, outputs.device))
                         if self.gradient else self._rollout(capture.ordered()))
            out.append(relevance)
        values = torch.cat(out)
        if not self.gradient:
            values = values.unsqueeze(-1).expand(*values.shape, targets.n_slots)
        seq = int(values.shape[1])
        meta: dict[str, Any] = {"scope": "layer",
                                "layers": [name for name, _ in modules],
                                "query_token": self.params.query_token,
                                "feature_names": [f"token_{i}" for i in range(seq)]}
        tokens = self.params.tokens
        return Attribution(values=to_numpy(values), metadata=meta, handoff=Handoff(
            caveats=(CAVEAT,), tokens=None if tokens is None else tuple(map(tuple, tokens))))

    def _query(self, relevance: Any) -> Any:
        q = self.params.query_token
        if not -relevance.shape[-1] <= q < relevance.shape[-1]:
            raise InputError(f"query_token {q} is outside the sequence of "
                             f"{relevance.shape[-1]} tokens")
        return relevance[:, q, :]

    def _rollout(self, weights: list[Any]) -> Any:
        """``(r, s)``: row ``query_token`` of ``B_L ... B_1``."""
        torch = require_torch(self.name)
        fusion = self.params.head_fusion
        r = self.params.residual
        result = None
        with torch.no_grad():
            for attn in weights:
                a = (attn.mean(1) if fusion == "mean" else attn.amax(1) if fusion == "max"
                     else attn.amin(1)).detach()
                eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
                b = (1.0 - r) * a + r * eye
                b = b / b.sum(-1, keepdim=True)
                result = b if result is None else b @ result
        return self._query(result)

    def _weighted(self, weights: list[Any], outputs: Any, index: Any) -> Any:
        """``(r, s, k)``: per targeted output, row ``query_token`` of the relevance ``R``."""
        torch = require_torch(self.name)
        slots = []
        with torch.enable_grad():
            selected = select_targets(outputs, index)
        k = selected.shape[1]
        used = [_computed_with(attn) for attn in weights]
        for j in range(k):
            grads = torch.autograd.grad(selected[:, j].sum(), used, retain_graph=j < k - 1)
            with torch.no_grad():
                a0 = weights[0]
                eye = torch.eye(a0.shape[-1], dtype=a0.dtype, device=a0.device)
                relevance = eye.expand(a0.shape[0], -1, -1).clone()
                for attn, grad in zip(weights, grads, strict=True):
                    cam = (grad.reshape(attn.shape) * attn).clamp_min(0).mean(1)
                    relevance = relevance + cam @ relevance
            slots.append(self._query(relevance))
        return torch.stack(slots, dim=-1)


def _computed_with(weights: Any) -> Any:
    """The tensor a module computed its output from: ``weights``, or the tensor they reshape.

    ``torch.nn.MultiheadAttention`` returns ``w.view(n, heads, s, s)`` of the ``(n * heads, s,
    s)`` weights ``w`` it multiplied the values with; the returned view is not on the path to
    the output, so the gradient is taken at ``w`` (the same values, reshaped back by the caller).
    """
    base = weights._base
    if (base is not None and base.numel() == weights.numel() and base.is_contiguous()
            and weights.is_contiguous()):
        return base
    return weights


class AttentionGradient(AttentionRollout):
    """Gradient-weighted attention relevance (Chefer et al. 2021)."""

    name = "attention.gradient"
    summary = "Gradient-weighted attention: positive grad x attention propagated through layers."
    description = (
        "Per layer, the attention weights are multiplied by the gradient of the explained output "
        "with respect to them, negative products are set to zero and the heads are averaged; "
        "starting from the identity, each layer adds its propagation of the relevance gathered so "
        "far (R <- R + A R). A token's value is the entry of R in the row of the query token "
        "(position 0 by default).")
    paper = ("Chefer, Gur and Wolf 2021, Generic Attention-model Explainability for "
             "Interpreting Bi-Modal and Encoder-Decoder Transformers")
    limitations = (CAVEAT, "Needs modules that return their attention weights (eager "
                   "attention) inside the autograd graph; head_fusion and residual are unused.")
    gradient = True


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``attention.rollout`` and ``attention.gradient``."""
    registry.add(AttentionRollout)
    registry.add(AttentionGradient)
