"""What every torch-based explainer shares: input tensors, target selection and gradients.

Explainers that need autograd import torch through :func:`require_torch` (never at module
level), so a host without torch still loads them and refuses them with a clear message. Models
reach here through the :class:`~xaudit.model.DifferentiableModel` protocol: ``to_tensors``
gives the input tensor(s) on the model's device and dtype, ``torch_forward`` the differentiable
``(n, n_outputs)`` output. Multi-input models are packed into one flat input by the host before
an explainer sees them (see :mod:`xaudit.multi_input`), so explainers handle one input.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from xaudit.batching import row_blocks
from xaudit.capabilities import refusal, require
from xaudit.errors import CapabilityError, InputError
from xaudit.model import DifferentiableModel, Model
from xaudit.plugins._support.pass_size import PassKey, pass_key, plan_passes
from xaudit.targets import TargetSelection


def require_torch(method: str) -> Any:
    """The ``torch`` module, or a CapabilityError naming ``method`` when torch is missing."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is present wherever gradients are
        raise CapabilityError(f"{method} needs PyTorch: pip install 'xaudit[torch]'") from exc
    return torch


def differentiable(model: Model, method: str) -> DifferentiableModel:
    """``model`` as a DifferentiableModel with one input: the ``gradients`` capability
    (:func:`xaudit.capabilities.require`), and an InputError for unpacked multi-input models."""
    net = require(model, "gradients", method)
    if len(getattr(net, "input_names", ()) or ()) > 1:
        raise InputError(f"{method} takes one input tensor; pack the inputs of multi-input "
                         f"model {model.name!r} with xaudit.multi_input.pack_inputs")
    return net


def float_inputs(model: Model, method: str) -> DifferentiableModel:
    """:func:`differentiable`, and refuse models with integer inputs (token ids): gradients
    with respect to ids do not exist, so input-gradient methods would return zeros there."""
    net = differentiable(model, method)
    inner = getattr(net, "inner", net)
    names = tuple(getattr(inner, "input_names", ()) or ())
    flags = tuple(getattr(inner, "differentiable_inputs", ()) or ())
    ids = [name for name, flag in zip(names, flags, strict=False) if not flag]
    if ids:
        raise refusal(method, "floating-point inputs", model,
                      f"input(s) {', '.join(repr(i) for i in ids)} are integer ids, and "
                      f"{method} differentiates the output with respect to the input; explain "
                      "at the embedding layer instead (layer.integrated), or use occlusion")
    return net


def input_tensor(model: DifferentiableModel, X: np.ndarray) -> Any:
    """``X`` as the model's (single) input tensor, detached, on its device and dtype."""
    return model.to_tensors(X)[0].detach()


class PickPredicted:
    """Pending ``"predicted"`` targets of some rows, chosen from the first forward's outputs.

    :func:`select_targets` calls it with the outputs ``(r, m)``; it records each row's arg-max
    in the selection's indices and returns them as ``(r, 1)``.
    """

    def __init__(self, targets: TargetSelection, rows: slice) -> None:
        self.targets, self.rows = targets, rows

    def __call__(self, outputs: Any) -> Any:
        """The arg-max output of each row, recorded in ``targets.indices``."""
        index = outputs.detach().argmax(dim=1, keepdim=True)
        self.targets.indices[self.rows] = index.cpu().numpy()
        return index


def target_index(targets: TargetSelection, rows: slice, device: Any) -> Any:
    """Targeted output indices of ``rows`` as a long tensor ``(r, k)`` on ``device``, or, for
    pending ``"predicted"`` targets (explainers that declare ``finds_predicted``), a
    :class:`PickPredicted` that :func:`select_targets` resolves on the forward's outputs."""
    if targets.pending:
        return PickPredicted(targets, rows)
    torch = require_torch("target selection")
    return torch.as_tensor(targets.indices[rows], dtype=torch.long, device=device)


def select_targets(outputs: Any, index: Any) -> Any:
    """``outputs (r, m)`` at ``index (r, k)`` -> ``(r, k)``; ``index`` repeats when ``outputs``
    has a multiple of its rows (e.g. several path points per row, row-major). A
    :class:`PickPredicted` index is resolved on ``outputs`` first."""
    if isinstance(index, PickPredicted):
        index = index(outputs)
    repeats = outputs.shape[0] // index.shape[0]
    if repeats > 1:
        index = index.repeat_interleave(repeats, dim=0)
    return outputs.gather(1, index)


def to_numpy(tensor: Any, absolute: bool = False) -> np.ndarray:
    """A tensor as a float64 numpy array on the CPU; its absolute values with ``absolute``.

    A float32 CPU tensor is widened (and made absolute) in one pass into the new array, which
    matters where that pass is a visible share of a millisecond explanation (saliency)."""
    torch = require_torch("numpy")
    tensor = tensor.detach().to(device="cpu").resolve_conj().resolve_neg()
    if tensor.dtype != torch.float32:  # float64 as it is; bfloat16 and others through torch
        tensor = tensor.to(torch.float64)
        return np.asarray((tensor.abs() if absolute else tensor).numpy())
    out = np.empty(tuple(tensor.shape), dtype=np.float64)
    if absolute:
        np.abs(tensor.numpy(), out=out)
    else:
        out[...] = tensor.numpy()
    return out


def weighted_target_gradients(model: DifferentiableModel, x: Any, index: Any,
                              weights: Any = None) -> tuple[list[Any], Any]:
    """Per targeted slot ``j``, ``weights[i] * d f_{index[i, j]}(x_i) / d x_i``, and the outputs.

    ``x`` is ``(r, *shape)``, ``index`` ``(r', k)`` with ``r`` a multiple of ``r'`` (as in
    :func:`select_targets`), ``weights`` ``(r,)`` or ``None`` (ones). The weights ride on the
    backward pass as its seed (``grad_outputs``), so weighting costs nothing; the gradients
    come back as a list of ``k`` tensors shaped like ``x`` (no stacking copy), with the graph
    kept only between slots. Returns ``(gradients, selected outputs (r, k) detached)``.
    """
    torch = require_torch("gradients")
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        selected = select_targets(model.torch_forward(x), index)
        k = selected.shape[1]
        seed = torch.ones_like(selected[:, 0]) if weights is None else weights.to(selected.dtype)
        grads = [torch.autograd.grad(selected[:, j], x, grad_outputs=seed,
                                     retain_graph=j < k - 1)[0] for j in range(k)]
    return grads, selected.detach()


def input_gradients(model: DifferentiableModel, x: Any, index: Any,
                    max_batch: int | None) -> Any:
    """``d f_{index[r, j]}(x_r) / d x_r`` for every row and slot: ``(k, n, *shape)``, in
    passes of ``max_batch`` rows (``None``: sized to the model, see
    :mod:`~xaudit.plugins._support.pass_size`), laid out as :func:`fast_memory_format` says."""
    torch = require_torch("gradients")
    n, total = int(x.shape[0]), None
    layout = fast_memory_format(model, x)
    plan = plan_passes(model, x, tuple(x.shape[1:]), max_batch, points=n)
    for rows in plan.row_passes(n):
        whole = rows.stop - rows.start == n  # one pass holds every row: no slices, no copies
        block = x if whole else x[rows]
        if layout is not None:
            block = block.contiguous(memory_format=layout)
        grads, _ = weighted_target_gradients(model, block, index if whole else index[rows])
        if whole:
            total = grads[0].unsqueeze(0) if len(grads) == 1 else torch.stack(grads)
            continue
        if total is None:
            total = x.new_empty((len(grads), *x.shape))
        for j, grad in enumerate(grads):
            total[j, rows] = grad
    return total if total is not None else x.new_empty((index.shape[1], *x.shape))


def targeted_outputs(model: DifferentiableModel, x: Any, index: Any, max_rows: int) -> Any:
    """Outputs ``(n, k)`` of ``x`` at ``index (n, k)`` (a pending :class:`PickPredicted` is
    chosen here), without autograd, in blocks of at most ``max_rows`` rows. ``x`` may hold a
    single row (a shared baseline): it is evaluated once and broadcast to ``index``'s rows."""
    torch = require_torch("outputs")
    with torch.no_grad():
        full = torch.cat([model.torch_forward(x[rows])
                          for rows in row_blocks(int(x.shape[0]), max_rows)])
    if full.shape[0] == 1 and not isinstance(index, PickPredicted):
        full = full.expand(index.shape[0], -1)
    return select_targets(full, index)


def fast_memory_format(model: DifferentiableModel, x: Any) -> Any:
    """``torch.channels_last`` when batches of ``x`` should be fed in that layout, else ``None``.

    On the CPU, convolutions run markedly faster on channels-last (NHWC-strided) tensors than on
    NCHW ones (measured 1.26x on the seeds' CNN, forward and backward). The layout changes
    strides, not values, but a forward that calls ``view`` on a permuted activation fails on
    it, and one that inspects strides could differ; so the layout is used only for 4-D float
    inputs on the CPU, only after one row gives the same outputs both ways, and only for a
    forward seen to call a convolution (what the layout speeds up; a TorchScript forward shows
    none of its calls, so it is never seen to). Nor is it used for a forward that selects
    among values (max-pooling, max/min, sorting: :data:`SELECTING`):
    the channels-last kernels round differently, and where two candidates of a max-pool window
    are within float32 rounding of each other the other one may win, which sends that window's
    gradient elsewhere. Measured: integrated gradients of a max-pool CNN fed channels-last
    differed from the NCHW (and float64) values by 3e-3 to 1.6e-2 of their largest value on
    three rows out of four, while CNNs without max selection (average pooling, the residual
    network of ``bench_gradient_architectures``) agreed to 3e-7. The verdict is
    remembered per model fingerprint, thread count, dtype and point shape (as pass sizes are,
    :func:`~xaudit.plugins._support.pass_size.pass_key`), so the check costs two forwards of
    one row once per model in a process, not on every call.
    """
    torch = require_torch("memory format")
    if x.ndim != 4 or x.device.type != "cpu" or not x.is_floating_point() or x.shape[0] == 0:
        return None
    key = pass_key(model, x, tuple(x.shape[1:]), "layout")
    if key is not None and key in _LAYOUTS:
        return torch.channels_last if _LAYOUTS[key] else None
    layout = _channels_last_agrees(model, x[:1], torch)
    if key is not None:
        _LAYOUTS[key] = layout is not None
    return layout


@functools.cache
def _recorder() -> Any:
    """A ``TorchFunctionMode`` class that records the names of the torch functions called while
    it is active (``names``); built on first use, so importing this module imports no torch."""
    from torch.overrides import TorchFunctionMode

    class Recorder(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: set[str] = set()

        def __torch_function__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            self.names.add(getattr(func, "__name__", ""))
            return func(*args, **(kwargs or {}))

    return Recorder


_LAYOUTS: dict[PassKey, bool] = {}
"""Whether channels-last was found to agree, by model and point (see :func:`fast_memory_format`)."""


SELECTING = frozenset({"max", "amax", "min", "amin", "maximum", "minimum", "fmax", "fmin",
                       "topk", "sort", "argsort", "kthvalue", "median", "nanmedian", "mode",
                       "cummax", "cummin"})
"""Torch functions (besides every ``*max_pool*``) that pick among values by comparing them, so
their gradient goes to the winner (see :func:`fast_memory_format`)."""


def selects(name: str) -> bool:
    """Whether the torch function called ``name`` (an operator overload's ``amax.default``
    as ``amax``) picks among values by comparing them."""
    base = name.split(".")[0]
    return "max_pool" in base or base in SELECTING


def convolves(name: str) -> bool:
    """Whether the torch function called ``name`` is a convolution (what channels-last speeds
    up)."""
    return name.split(".")[0] in {"conv2d", "conv_transpose2d", "convolution", "_convolution"}


def _channels_last_agrees(model: DifferentiableModel, probe: Any, torch: Any) -> Any:
    """``torch.channels_last`` when one row ``probe`` gives the same outputs in both layouts
    and its forward is seen to convolve (:func:`convolves`) and to select among no values
    (:func:`selects`). A forward run outside Python's dispatch (TorchScript) shows no calls,
    so it keeps its layout: what it does cannot be checked."""
    called = _recorder()()
    try:
        with torch.no_grad():
            with called:
                plain = model.torch_forward(probe.contiguous())
            if any(selects(name) for name in called.names) or not any(
                    convolves(name) for name in called.names):
                return None  # max selection, or no convolution seen (none, or TorchScript)
            strided = model.torch_forward(probe.contiguous(memory_format=torch.channels_last))
    except (RuntimeError, ValueError, TypeError, InputError):
        return None
    scale = float(plain.abs().max()) + 1e-12
    if plain.shape != strided.shape or float((plain - strided).abs().max()) > 1e-4 * scale:
        return None
    return torch.channels_last
