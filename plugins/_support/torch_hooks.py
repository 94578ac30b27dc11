"""Layer access for torch explainers: find the module, read or replace a layer's output.

Layer methods (Grad-CAM, conductance, layer integrated gradients, activations) need the
``nn.Module`` behind a model and a named submodule. :func:`torch_module` and
:func:`named_layer` give them with clear errors; :class:`LayerHook` captures a layer's output
during a forward, optionally replacing it (layer integrated gradients) or cutting the graph
before it (Grad-CAM only needs gradients from the layer on, so nothing before it is recorded).
:func:`layer_gradients` combines these: the layer's output and the gradient of each targeted
output with respect to it. Integration points of path methods are
:func:`xaudit.plugins._support.paths.path_rule`'s.

A layer whose forward returns a tuple or list (Hugging Face blocks, recurrent layers) is read
at every tensor element (:func:`output_tensors`), as Captum's layer methods read every element:
the hook records, replaces or cuts them all, so no part of the layer's output is dropped from
an attribution; ``None`` elements carry nothing and are passed through.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from xaudit.capabilities import refusal, require
from xaudit.errors import InputError
from xaudit.model import DifferentiableModel, LayeredModel, Model
from xaudit.plugins._support.autograd import differentiable, require_torch, select_targets


def torch_module(model: Model, method: str) -> Any:
    """The ``nn.Module`` a model runs (the torch adapter's ``module``), or the capability
    refusal naming ``method``."""
    torch = require_torch(method)
    module = getattr(model, "module", None)
    if module is None:  # a multi-input model packed by the host wraps the adapted one
        module = getattr(getattr(model, "inner", None), "module", None)
    if isinstance(module, torch.nn.Module):
        return module
    hint = ("an ONNX model runs as a graph of functions (no torch modules to attach rules "
            "to); load the original PyTorch module with the torch adapter, or use "
            "gradient.integrated / shap.gradient"
            if getattr(model, "adapter", "") == "onnx" else
            "adapt the PyTorch nn.Module with the torch adapter")
    raise refusal(method, "the torch nn.Module of the model", model, hint)


def layered(model: Model, method: str) -> LayeredModel:
    """``model`` as a LayeredModel (named layers and gradients, one input), or the
    capability refusal naming ``method``."""
    differentiable(model, method)
    net = require(model, "layers", method)
    if not net.layer_names():
        raise refusal(method, "named layers", model, "the model lists none")
    return net


def named_layer(model: LayeredModel, name: str) -> Any:
    """The submodule ``name`` of ``model`` (InputError with close names otherwise)."""
    return model.layer(name)


def output_tensors(output: Any, name: str) -> tuple[Any, ...]:
    """The tensors a layer returned: the output itself, or every tensor of a tuple or list
    (``None`` elements skipped); InputError naming the layer for anything else."""
    torch = require_torch("layer hooks")
    if isinstance(output, torch.Tensor):
        return (output,)
    if isinstance(output, tuple | list):
        for i, part in enumerate(output):
            if part is not None and not isinstance(part, torch.Tensor):
                raise InputError(f"layer {name!r} returns a {type(output).__name__} of "
                                 f"{len(output)} elements whose element {i} is a "
                                 f"{type(part).__name__}, not a tensor; choose a layer whose "
                                 "outputs are tensors")
        tensors = tuple(part for part in output if part is not None)
        if tensors:
            return tensors
    raise InputError(f"layer {name!r} returned a {type(output).__name__}, not a tensor; "
                     "choose a layer whose output is a tensor")


def _with_tensors(output: Any, tensors: tuple[Any, ...]) -> Any:
    """``output`` with its tensors replaced by ``tensors``, in order."""
    if not isinstance(output, tuple | list):
        return tensors[0]
    given = iter(tensors)
    parts = [None if part is None else next(given) for part in output]
    if hasattr(output, "_make"):  # a named tuple
        return output._make(parts)
    return type(output)(parts)


def single_tensor(outputs: tuple[Any, ...], name: str, method: str) -> Any:
    """The one tensor of a layer's outputs, or InputError for a layer returning several."""
    if len(outputs) != 1:
        raise InputError(f"{method} reads one tensor, and layer {name!r} returns "
                         f"{len(outputs)} (a tuple); choose a layer with one output tensor")
    return outputs[0]


class LayerHook:
    """Forward hook on one layer: keeps its output tensors, optionally replaces or cuts them.

    ``outputs`` holds the layer's tensors (one, or every tensor of a returned tuple, see
    :func:`output_tensors`). ``replace``: tensors returned instead (same count and shapes).
    ``cut``: each output is detached and made a leaf requiring grad. Either way grad mode is
    switched on for the rest of the forward, so a forward run under ``no_grad`` records only
    what follows the layer. The layer must run once per forward; a second call raises
    InputError.
    """

    def __init__(self, layer: Any, name: str, *, replace: tuple[Any, ...] | None = None,
                 cut: bool = False):
        self.layer, self.name, self.replace, self.cut = layer, name, replace, cut
        self.outputs: tuple[Any, ...] = ()
        self.calls = 0

    def __call__(self, module: Any, inputs: Any, output: Any) -> Any:
        torch = require_torch("layer hooks")
        self.calls += 1
        if self.calls > 1:
            raise InputError(f"layer {self.name!r} runs more than once in a forward; choose a "
                             "layer that is called once")
        tensors = output_tensors(output, self.name)
        if self.replace is not None:
            shapes = [tuple(t.shape) for t in tensors]
            if [tuple(t.shape) for t in self.replace] != shapes:
                raise InputError(f"layer {self.name!r} outputs shaped {shapes}, replacements "
                                 f"shaped {[tuple(t.shape) for t in self.replace]}")
            torch.set_grad_enabled(True)
            self.outputs = tuple(self.replace)
            return _with_tensors(output, self.outputs)
        if self.cut:
            self.outputs = tuple(t.detach().requires_grad_(True) for t in tensors)
            torch.set_grad_enabled(True)
            return _with_tensors(output, self.outputs)
        self.outputs = tensors
        return None

    @contextmanager
    def attached(self) -> Iterator[LayerHook]:
        """Register the hook for the duration of the block (grad mode restored after)."""
        torch = require_torch("layer hooks")
        handle = self.layer.register_forward_hook(self)
        grad_mode = torch.is_grad_enabled()
        try:
            self.calls = 0
            yield self
        finally:
            handle.remove()
            torch.set_grad_enabled(grad_mode)


def layer_gradients(model: DifferentiableModel, x: Any, layer: Any, name: str, index: Any, *,
                    replace: tuple[Any, ...] | None = None, cut: bool = False,
                    create_graph: bool = False) -> tuple[tuple[Any, ...], tuple[Any, ...], Any]:
    """The layer's output tensors ``(r, *shape_e)``, the gradients of each target w.r.t. each
    of them ``(r, *shape_e, k)`` (zeros for an output the model's result does not use) and the
    targeted outputs ``(r, k)``. ``index`` ``(r', k)`` as in
    :func:`~xaudit.plugins._support.autograd.select_targets`."""
    torch = require_torch("layer gradients")
    hook = LayerHook(layer, name, replace=replace, cut=cut)
    with hook.attached(), torch.set_grad_enabled(not cut and replace is None):
        outputs = model.torch_forward(x)
    if not hook.outputs:
        raise InputError(f"layer {name!r} did not run in the model's forward")
    with torch.enable_grad():
        selected = select_targets(outputs, index)
        k = selected.shape[1]
        grads = [torch.autograd.grad(selected[:, j].sum(), hook.outputs,
                                     retain_graph=create_graph or j < k - 1,
                                     create_graph=create_graph, allow_unused=True)
                 for j in range(k)]
    per_output = tuple(
        torch.stack([torch.zeros_like(out) if g[e] is None else g[e] for g in grads], dim=-1)
        for e, out in enumerate(hook.outputs))
    return hook.outputs, per_output, selected.detach()


def last_conv_layer(model: LayeredModel, x: Any) -> str:
    """Name of the last ``Conv2d`` the forward runs (found by one forward on ``x[:1]``)."""
    torch = require_torch("layer search")
    names = {id(m): n for n, m in torch_module(model, "layer search").named_modules() if n}
    order: list[str] = []
    handles = [m.register_forward_hook(lambda mod, i, o: order.append(names[id(mod)]))
               for m in torch_module(model, "layer search").modules()
               if isinstance(m, torch.nn.Conv2d) and id(m) in names]
    try:
        with torch.no_grad():
            model.torch_forward(x[:1])
    finally:
        for handle in handles:
            handle.remove()
    if not order:
        raise InputError(f"model {model.name!r} runs no Conv2d layer; name the layer with "
                         "the 'layer' parameter")
    return order[-1]
