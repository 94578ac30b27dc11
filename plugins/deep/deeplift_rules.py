"""The rules of DeepLIFT (Rescale) on a torch forward: an explicit allow-list, refusals by name.

Shrikumar, Greenside and Kundaje 2017, "Learning Important Features Through Propagating
Activation Differences" (ICML). The input and its reference run in one batch ``[x; x']`` (rows
``0..r-1`` and ``r..2r-1``). Every operation the forward applies to a tensor derived from the
input is intercepted (a :class:`torch.overrides.TorchFunctionMode`), so non-linearities called
as functions (``F.relu`` in a ``forward``) are seen as well as modules:

- linear operations (``linear``, convolutions, sums, reshapes, average pooling, eval-mode batch
  norm and dropout, products with a constant) keep their gradient, which is their multiplier;
- element-wise non-linearities (ReLU, LeakyReLU, ELU, GELU, SiLU, Softplus, Sigmoid, Tanh) get
  the Rescale multiplier ``dy / dx`` (``y(x) - y(x')`` over ``x - x'``), the gradient where
  ``|x - x'| < eps``;
- max pooling gets the cross-maximum rule (each output's difference ``max(y, y') - y'`` is sent
  to the input's arg-max, ``y - max(y, y')`` to the reference's), as Captum's rule for it, or,
  with ``maxpool="gradient"``, its gradient (the original DeepLIFT code's default for max
  pooling; Captum 0.9 in effect applies it when the pool directly follows an activation
  module, because both of its hooks then sit on one tensor and the pool's rule is dropped);
- softmax gets the element-wise Rescale multiplier minus its mean over the row (Captum subtracts
  the mean over the whole batch, which makes a row depend on the others; here it is per row, so
  the two agree for one row at a time);
- layer normalisation keeps its gradient (as in Captum).

Softmax and layer normalisation mix the units of a row, so no element-wise multiplier makes
them sum exactly; they are listed in ``metadata["inexact_ops"]`` when the forward used them, and
the values then sum to ``f(x) - f(x')`` only approximately (explain the logits for exactness).

Anything else applied to input-derived tensors (a product of two activations, ``exp``,
attention, ...) raises :class:`~xaudit.errors.CapabilityError` naming the operation and the
module whose forward called it, and a ``torch.nn`` module outside :data:`ALLOWED_MODULES`
(``MultiheadAttention``, ``LSTM``, ...) is refused by name before any work: never a silently
wrong number (shap#3505, #3611, #3643).
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import Field

from xaudit.errors import CapabilityError
from xaudit.model import DifferentiableModel, Model
from xaudit.plugin import PluginParams
from xaudit.plugins._support.autograd import float_inputs, require_torch
from xaudit.plugins._support.torch_hooks import torch_module

ALLOWED_MODULES = (
    "Linear", "Conv1d", "Conv2d", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Softplus",
    "Sigmoid", "Tanh", "Softmax", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm",
    "Dropout", "Flatten", "Identity", "Sequential", "ModuleList", "ModuleDict",
)
"""``torch.nn`` module classes a model may contain (other classes only as containers whose
``forward`` uses the operations below)."""

ELEMENTWISE = {"relu", "relu_", "leaky_relu", "leaky_relu_", "elu", "elu_", "gelu", "silu",
               "softplus", "sigmoid", "sigmoid_", "tanh", "tanh_"}
SOFTMAX = {"softmax", "_softmax"}
MAXPOOL = {"max_pool1d", "max_pool2d", "_max_pool1d", "_max_pool2d"}
GRADIENT_RULE = {"layer_norm"}
LINEAR = {
    "linear", "conv1d", "conv2d", "conv3d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "pad", "flatten", "unflatten", "view", "reshape", "permute",
    "transpose", "t", "squeeze", "unsqueeze", "contiguous", "__getitem__", "expand",
    "expand_as", "clone", "to", "float", "double", "type_as", "repeat", "chunk", "split",
    "narrow", "select", "unbind", "movedim", "cat", "concat", "stack", "sum", "mean", "add",
    "add_", "sub", "sub_", "neg", "__add__", "__radd__", "__iadd__", "__sub__", "__rsub__",
    "__isub__", "__neg__", "__pos__", "identity",
}
PRODUCTS = {"mul", "mul_", "__mul__", "__rmul__", "__imul__", "matmul", "__matmul__",
            "__rmatmul__", "mm", "bmm", "div", "div_", "__truediv__", "__itruediv__"}
TRAINING_ARG = {"batch_norm": 5, "dropout": 2}


def check_modules(module: Any, method: str) -> None:
    """Refuse a model holding a ``torch.nn`` module outside :data:`ALLOWED_MODULES` (named).

    Modules defined elsewhere (the user's own, Hugging Face's) are containers: the operations
    their ``forward`` applies are checked one by one during the forward (see
    :class:`DeepLiftMode`), and the first one without a rule is refused with the module's name.
    """
    for name, sub in module.named_modules():
        cls = type(sub)
        if not cls.__module__.startswith("torch.nn") or cls.__name__ in ALLOWED_MODULES:
            continue
        raise CapabilityError(
            f"{method} cannot handle layer {name or '<root>'!r} of type {cls.__qualname__}"
            f" ({cls.__module__}): DeepLIFT rules cover {', '.join(ALLOWED_MODULES)}; use "
            "gradient.integrated or shap.gradient for this model")


def _tensors(tree: Any) -> list[Any]:
    torch = require_torch("deeplift")
    leaves, _ = torch.utils._pytree.tree_flatten(tree)
    return [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]


def _halves_diff(t: Any) -> Any:
    torch = require_torch("deeplift")
    half = t.shape[0] // 2
    diff = t[:half] - t[half:]
    return torch.cat([diff, diff])


def _make_rules() -> tuple[Any, Any, Any]:
    """The three autograd functions, built when torch is imported."""
    torch = require_torch("deeplift")
    function: Any = torch.autograd.Function

    class Rescale(function):  # type: ignore[misc]
        @staticmethod
        def forward(ctx: Any, x: Any, fn: Any, eps: float) -> Any:
            y = fn(x)
            ctx.save_for_backward(x, y)
            ctx.fn, ctx.eps = fn, eps
            return y

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            x, y = ctx.saved_tensors
            dx, dy = _halves_diff(x), _halves_diff(y)
            small = dx.abs() < ctx.eps
            if not bool(small.any()):
                return g * dy / dx, None, None
            with torch.enable_grad():
                xx = x.detach().requires_grad_(True)
                plain = torch.autograd.grad(ctx.fn(xx), xx, g)[0]
            return torch.where(small, plain, g * dy / torch.where(small, 1.0, dx)), None, None

    class SoftmaxRule(Rescale):
        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            grad = Rescale.backward(ctx, g)[0]
            half = grad.shape[0] // 2
            flat = grad.reshape(grad.shape[0], -1)
            row_mean = (flat[:half] + flat[half:]).sum(1, keepdim=True) / (2 * flat.shape[1])
            flat = flat - torch.cat([row_mean, row_mean])
            return flat.reshape(grad.shape), None, None

    class MaxPoolRule(function):  # type: ignore[misc]
        @staticmethod
        def forward(ctx: Any, x: Any, fn: Any, eps: float) -> Any:
            y, index = fn(x)
            ctx.save_for_backward(x, y, index)
            ctx.eps = eps
            return y

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            x, y, index = ctx.saved_tensors
            half = x.shape[0] // 2
            top = torch.maximum(y[:half], y[half:])
            dy = torch.cat([top - y[half:], y[:half] - top])
            flat_index = index.flatten(2)

            def unpool(values: Any) -> Any:
                out = torch.zeros_like(x).flatten(2)
                return out.scatter_add_(2, flat_index, values.flatten(2)).view_as(x)

            moved = unpool(g * dy)
            moved = moved[:half] + moved[half:]
            dx = _halves_diff(x)
            return (torch.where(dx.abs() < ctx.eps, unpool(g), torch.cat([moved, moved]) / dx),
                    None, None)

    return Rescale, SoftmaxRule, MaxPoolRule


def _out_of_place(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``t -> func(t, *args[1:], **kwargs)`` computed out of place (``inplace`` dropped)."""
    torch = require_torch("deeplift")
    name = func.__name__
    name = name[:-1] if name.endswith("_") and not name.endswith("__") else name
    base = getattr(torch.nn.functional, name, None) or getattr(torch, name)
    try:
        bound = inspect.signature(base).bind_partial(None, *args[1:], **kwargs).arguments
    except (TypeError, ValueError):  # builtins without a signature take no inplace flag
        return lambda t: base(t, *args[1:], **kwargs)
    first = next(iter(bound))
    bound.pop(first)
    bound.pop("inplace", None)
    return lambda t: base(t, **bound)


class DeepLiftMode:
    """Context manager running a forward on ``[x; x']`` (``rows2`` rows) with DeepLIFT's rules.

    ``module`` is the model's root module (its submodules name the caller in refusals).
    After the forward, ``inexact_ops`` lists the operations whose rule does not sum exactly
    (softmax, layer norm).
    """

    def __init__(self, module: Any, rows2: int, eps: float, method: str,
                 maxpool: str = "crossmax") -> None:
        torch = require_torch(method)
        self.module, self.rows2, self.eps, self.method = module, rows2, eps, method
        self.maxpool = maxpool
        self.inexact_ops: set[str] = set()
        self._rules = _make_rules()
        self._stack: list[str] = []
        self._handles: list[Any] = []
        self._tainted: dict[int, Any] = {}
        outer = self
        base: Any = torch.overrides.TorchFunctionMode

        class Mode(base):  # type: ignore[misc]
            def __torch_function__(self, func: Any, types: Any, args: Any = (),
                                   kwargs: Any = None) -> Any:
                return outer._dispatch(func, tuple(args), dict(kwargs or {}))

        self._mode = Mode()

    def taint(self, tensor: Any) -> Any:
        """Mark ``tensor`` as derived from the input (the concatenated input, at the start)."""
        self._tainted[id(tensor)] = tensor
        return tensor

    def _is_tainted(self, tensor: Any) -> bool:
        return self._tainted.get(id(tensor)) is tensor

    def _push(self, label: str) -> None:
        self._stack.append(label)

    def _pop(self) -> None:
        if self._stack:
            self._stack.pop()

    def __enter__(self) -> DeepLiftMode:
        for name, sub in self.module.named_modules():
            label = (f"layer {name!r}" if name else "the root module") + (
                f" ({type(sub).__qualname__})")
            self._handles.append(sub.register_forward_pre_hook(
                lambda m, i, label=label: self._push(label)))
            self._handles.append(sub.register_forward_hook(lambda m, i, o: self._pop()))
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._tainted.clear()

    def _refuse(self, what: str) -> CapabilityError:
        where = self._stack[-1] if self._stack else "the model's output selection"
        return CapabilityError(
            f"{self.method} has no rule for {what} in the forward of {where}: DeepLIFT handles "
            "linear operations, element-wise activations, max pooling and softmax only; use "
            "gradient.integrated or shap.gradient for this model")

    def _dispatch(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        torch = require_torch(self.method)
        tainted = [t for t in _tensors((args, kwargs)) if self._is_tainted(t)]
        name = getattr(func, "__name__", repr(func))
        if func is torch.nn.functional.max_pool1d or func is torch.nn.functional.max_pool2d:
            name = "max_pool2d" if func is torch.nn.functional.max_pool2d else "max_pool1d"
        if not tainted:
            return func(*args, **kwargs)
        out = self._apply(func, name, args, kwargs, tainted)
        for tensor in _tensors(out):
            self.taint(tensor)
        return out

    def _apply(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               tainted: list[Any]) -> Any:
        torch = require_torch(self.method)
        rescale, softmax, maxpool = self._rules
        if name in MAXPOOL and self.maxpool == "gradient":
            return func(*args, **kwargs)
        if name in ELEMENTWISE or name in SOFTMAX or name in MAXPOOL:
            x = args[0] if args else kwargs.pop("input")
            if not self._is_tainted(x) or x.shape[0] != self.rows2:
                raise self._refuse(f"{name} on a tensor whose first axis is not the batch")
            if name in ELEMENTWISE:
                return rescale.apply(x, _out_of_place(func, (x, *args[1:]), kwargs), self.eps)
            if name in SOFTMAX:
                self.inexact_ops.add("softmax")
                return softmax.apply(x, lambda t: func(t, *args[1:], **kwargs), self.eps)
            return maxpool.apply(x, _pool_with_indices(name, args[1:], kwargs), self.eps)
        if name in TRAINING_ARG:
            pos = TRAINING_ARG[name]
            training = args[pos] if len(args) > pos else kwargs.get("training", False)
            if training:
                raise self._refuse(f"{name} in training mode (put the model in eval mode)")
            return func(*args, **kwargs)
        if name in GRADIENT_RULE:
            self.inexact_ops.add(name)
            return func(*args, **kwargs)
        if name in LINEAR:
            return func(*args, **kwargs)
        if name in PRODUCTS:
            operands = [a for a in args[:2] if isinstance(a, torch.Tensor)]
            both = len(tainted) > 1 or (name.startswith(("div", "__truediv", "__itruediv"))
                                        and len(args) > 1 and self._is_tainted(args[1]))
            if not both and operands:
                return func(*args, **kwargs)
            raise self._refuse(f"{name} of two input-dependent tensors")
        out = func(*args, **kwargs)
        if not _tensors(out):
            return out  # shapes, sizes, dtypes: no values flow
        raise self._refuse(f"operation {name!r}")


def _pool_with_indices(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    torch = require_torch("deeplift")
    F = torch.nn.functional
    pool = F.max_pool2d_with_indices if "2d" in name else F.max_pool1d_with_indices
    bound = inspect.signature(pool).bind_partial(None, *args, **kwargs).arguments
    bound.pop("input", None)
    if bound.pop("return_indices", False):
        raise CapabilityError("deeplift cannot run a max pooling that returns its indices")
    return lambda t: pool(t, **bound, return_indices=True)


# ------------------------------------------------------------------ attributions and explainer



class RuleParams(PluginParams):
    """The rule parameters ``deeplift`` and ``shap.deep`` share."""

    maxpool: Literal["crossmax", "gradient"] = "crossmax"
    """Max-pooling rule: cross-maximum (sums exactly) or plain gradient (see the docs)."""
    eps: float = Field(1e-10, gt=0)
    """Below this ``|x - x'|`` a non-linearity keeps its gradient (as Captum)."""


def deeplift_gradients(model: DifferentiableModel, module: Any, x: Any, ref: Any, index: Any,
                       eps: float, method: str,
                       maxpool: str = "crossmax") -> tuple[Any, Any, set[str]]:
    """DeepLIFT multipliers of rows ``x`` against references ``ref`` (same shape).

    Returns the multipliers ``(r, *shape, k)`` (attributions are ``(x - ref) *`` these), the
    targeted outputs ``(2r, k)`` of ``[x; ref]`` and the operations that kept their gradient.
    As in Captum, the gradient of the targets of both halves is taken (the halves only meet
    in the softmax rule's row mean).
    """
    torch = require_torch(method)
    rows = x.shape[0]
    both = torch.cat([x, ref]).detach().requires_grad_(True)
    mode = DeepLiftMode(module, both.shape[0], eps, method, maxpool)
    with torch.enable_grad():
        mode.taint(both)
        with mode:
            outputs = model.torch_forward(both)
        selected = outputs.gather(1, torch.cat([index, index]))
        k = selected.shape[1]
        grads = [torch.autograd.grad(selected[:, j].sum(), both, retain_graph=j < k - 1)[0][:rows]
                 for j in range(k)]
    return torch.stack(grads, dim=-1), selected.detach(), mode.inexact_ops


def prepare(model: Model, method: str) -> tuple[DifferentiableModel, Any]:
    """The differentiable model and its torch module, checked against the allow-list."""
    dm = float_inputs(model, method)
    module = torch_module(model, method)
    check_modules(module, method)
    return dm, module
