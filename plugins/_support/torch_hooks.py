"""Layer access for torch explainers: find the module, read or replace a layer's output.

Layer methods (Grad-CAM, conductance, layer integrated gradients, activations) need the
``nn.Module`` behind a model and a named submodule. :func:`torch_module` and
:func:`named_layer` give them with clear errors; :class:`LayerHook` captures a layer's output
during a forward, optionally replacing it (layer integrated gradients) or cutting the graph
before it (Grad-CAM only needs gradients from the layer on, so nothing before it is recorded).
:func:`layer_gradients` combines these: the layer's output and the gradient of each targeted
output with respect to it. Integration points of path methods are
:func:`xaudit.plugins._support.paths.path_rule`'s.

A layer whose forward returns a tuple (Hugging Face blocks) is read at element 0.
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


def first_tensor(output: Any) -> Any:
    """A layer's output tensor: the output itself, or element 0 of a tuple/list."""
    torch = require_torch("layer hooks")
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if not isinstance(output, torch.Tensor):
        raise InputError(f"the layer returned a {type(output).__name__}, not a tensor; "
                         "choose a layer whose output is a tensor")
    return output


def _with_first(output: Any, tensor: Any) -> Any:
    if isinstance(output, tuple | list):
        return type(output)([tensor, *output[1:]])
    return tensor


class LayerHook:
    """Forward hook on one layer: keeps its output, optionally replaces or cuts it.

    ``replace``: a tensor returned instead of the layer's output (same shape). ``cut``: the
    output is detached and made a leaf requiring grad. Either way grad mode is switched on for
    the rest of the forward, so a forward run under ``no_grad`` records only what follows the
    layer. The layer must run once per forward; a second call raises InputError.
    """

    def __init__(self, layer: Any, name: str, *, replace: Any = None, cut: bool = False):
        self.layer, self.name, self.replace, self.cut = layer, name, replace, cut
        self.output: Any = None
        self.calls = 0

    def __call__(self, module: Any, inputs: Any, output: Any) -> Any:
        torch = require_torch("layer hooks")
        self.calls += 1
        if self.calls > 1:
            raise InputError(f"layer {self.name!r} runs more than once in a forward; choose a "
                             "layer that is called once")
        tensor = first_tensor(output)
        if self.replace is not None:
            if tuple(self.replace.shape) != tuple(tensor.shape):
                raise InputError(f"layer {self.name!r} output shaped {tuple(tensor.shape)}, "
                                 f"replacement shaped {tuple(self.replace.shape)}")
            torch.set_grad_enabled(True)
            self.output = self.replace
            return _with_first(output, self.replace)
        if self.cut:
            tensor = tensor.detach().requires_grad_(True)
            torch.set_grad_enabled(True)
            self.output = tensor
            return _with_first(output, tensor)
        self.output = tensor
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
                    replace: Any = None, cut: bool = False,
                    create_graph: bool = False) -> tuple[Any, Any, Any]:
    """Layer output ``(r, *shape)``, gradients of each target w.r.t. it ``(r, *shape, k)`` and
    the targeted outputs ``(r, k)``. ``index`` ``(r', k)`` as in
    :func:`~xaudit.plugins._support.autograd.select_targets`."""
    torch = require_torch("layer gradients")
    hook = LayerHook(layer, name, replace=replace, cut=cut)
    with hook.attached(), torch.set_grad_enabled(not cut and replace is None):
        outputs = model.torch_forward(x)
    if hook.output is None:
        raise InputError(f"layer {name!r} did not run in the model's forward")
    with torch.enable_grad():
        selected = select_targets(outputs, index)
        k = selected.shape[1]
        grads = [torch.autograd.grad(selected[:, j].sum(), hook.output,
                                     retain_graph=create_graph or j < k - 1,
                                     create_graph=create_graph)[0] for j in range(k)]
    return hook.output, torch.stack(grads, dim=-1), selected.detach()


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
