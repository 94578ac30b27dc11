"""A torch module as an xaudit :class:`~xaudit.model.LayeredModel`.

:class:`TorchModel` does the per-call work: input checks and conversion (:meth:`to_tensors`),
output selection (:func:`select_output`) and transform, bounded batches under ``no_grad`` for
``predict``, the differentiable :meth:`TorchModel.torch_forward`, layer access and the
fingerprint. How a module is found is in :mod:`xaudit.adapters.torch.loading`, how it is
described, converted and checked at load time in :mod:`xaudit.adapters.torch.setup`.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xaudit.adapters.hyperparameters import torch_hyperparameters
from xaudit.adapters.torch.randomize import parameter_layers, randomized_modules
from xaudit.batching import row_blocks
from xaudit.errors import InputError, ModelLoadError
from xaudit.hyperparameters import Hyperparameters
from xaudit.model import InputSpec, ModelBase
from xaudit.multi_input import check_row_counts, split_inputs
from xaudit.randomization import LAYERS, Randomization, RandomizedStage, refusal

Key = tuple[int | str, ...]
FORWARD_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, AssertionError)
"""What a forward raises on inputs of the wrong shape or dtype (export guards assert)."""


@dataclass(eq=False, repr=False)
class TorchModel(ModelBase):
    """An ``nn.Module`` (eval mode) with its device, dtype, inputs and output selection.

    ``predict(X)`` takes one array, or for multi-input models a tuple/list (or a mapping by
    input name) of arrays with the same number of rows; ``input_specs`` describes every input
    and ``input_spec`` is the first. ``differentiable_inputs`` is false for integer inputs
    (token ids): gradients start at a layer (the embedding) for those.
    """

    module: Any = None
    device: Any = None
    dtype: Any = None
    input_names: tuple[str, ...] = ()
    input_specs: tuple[InputSpec, ...] = ()
    differentiable_inputs: tuple[bool, ...] = ()
    output: str = "logits"
    output_key: Key = ()
    max_batch: int = 256
    fixed_batch: int | None = None
    """Set for exported programs whose batch size was fixed at export: rows go in chunks."""
    layered: bool = True
    file_hash: str | None = None
    state_hash: str | None = None
    bind: Callable[[tuple[int, ...]], TorchModel] | None = None
    """Set while the row shape is unknown: builds the model for rows of a given shape. The
    first rows the model is given bind it (:meth:`check_inputs`)."""

    def __repr__(self) -> str:
        return (f"TorchModel(name={self.name!r}, inputs={list(self.input_names)}, "
                f"outputs={len(self.output_names)}, device={self.device}, dtype={self.dtype})")

    @property
    def n_inputs(self) -> int:
        """Number of tensors the forward takes."""
        return len(self.input_specs)

    # ---------------------------------------------------------------- inputs

    def check_inputs(self, X: Any) -> list[np.ndarray]:
        """One array per input, each ``(n, *feature_shape)`` with the same ``n``, or InputError.

        An unbound model (:attr:`bind`) first becomes the model for rows shaped like ``X``'s.
        """
        if self.bind is not None:
            rows = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
            if rows.ndim < 2:
                raise InputError(f"model {self.name!r} takes its row shape from the first rows "
                                 f"it is given; give a batch (n, *row_shape), got shape "
                                 f"{rows.shape}")
            self.__dict__.update(vars(self.bind(tuple(rows.shape[1:]))))
        parts = split_inputs(X, self.input_names, self.name)
        arrays = []
        for name, spec, part in zip(self.input_names, self.input_specs, parts, strict=True):
            array = part.detach().cpu().numpy() if isinstance(part, torch.Tensor) else (
                np.asarray(part))
            if array.ndim == len(spec.feature_shape):
                array = array[None, ...]
            if tuple(array.shape[1:]) != spec.feature_shape:
                which = f" input {name!r}" if self.n_inputs > 1 else ""
                raise InputError(f"model {self.name!r}{which} expects rows shaped "
                                 f"{spec.feature_shape}, got {tuple(array.shape[1:])}")
            arrays.append(array)
        check_row_counts(arrays, self.input_names, self.name)
        return arrays


    def to_tensors(self, X: Any) -> tuple[Any, ...]:
        """Numpy array(s) as tensors on :attr:`device`: floats in :attr:`dtype`, ids as int64."""
        return self._convert(self.check_inputs(X))

    def _convert(self, arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, ...]:
        tensors = []
        for name, spec, array in zip(self.input_names, self.input_specs, arrays, strict=True):
            if spec.dtype == "int64":
                if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
                    raise InputError(f"model {self.name!r} input {name!r} takes integer ids, "
                                     "got non-integer values")
                tensor = torch.as_tensor(np.asarray(array, dtype=np.int64))
            else:
                tensor = torch.as_tensor(np.asarray(array)).to(self.dtype)
            tensors.append(tensor.to(self.device))
        return tuple(tensors)

    # ---------------------------------------------------------------- forward

    def torch_forward(self, *inputs: Any) -> Any:
        """The selected, transformed ``(n, n_outputs)`` output; differentiable.

        Autograd follows the caller's grad mode (on by default); pass tensors from
        :meth:`to_tensors` with ``requires_grad_()`` set on the float ones.
        """
        if len(inputs) != self.n_inputs:
            raise InputError(f"model {self.name!r} takes {self.n_inputs} input tensor(s) "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        if self.fixed_batch is None:
            return self._call(inputs)
        return self._call_fixed(inputs, self.fixed_batch)

    def _call(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        n = int(inputs[0].shape[0])
        try:
            raw = self.module(*inputs)
        except FORWARD_ERRORS as exc:
            shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
            expected = ", ".join(str((n, *s.feature_shape)) for s in self.input_specs)
            raise InputError(f"the forward of model {self.name!r} failed on input(s) shaped "
                             f"{shapes} (expected {expected}): {type(exc).__name__}: "
                             f"{_first_line(exc)}") from exc
        out = select_output(raw, self.output_key)
        if out.ndim == 1:
            out = out[:, None]
        if out.ndim != 2 or out.shape[0] != n:
            raise InputError(f"model {self.name!r} returned an output shaped {tuple(out.shape)} "
                             f"for {n} rows; xaudit needs (n_rows, n_outputs): select or reduce "
                             "the output in a wrapper module (or check feature_shape)")
        if self.output == "softmax":
            return torch.softmax(out, dim=1)
        if self.output == "sigmoid":
            return torch.sigmoid(out)
        return out

    def _call_fixed(self, inputs: Sequence[torch.Tensor], size: int) -> torch.Tensor:
        n = int(inputs[0].shape[0])
        parts = []
        for rows in row_blocks(n, size):
            chunk = [t[rows] for t in inputs]
            short = size - int(chunk[0].shape[0])
            if short:
                chunk = [torch.cat([c, c.new_zeros((short, *c.shape[1:]))]) for c in chunk]
            parts.append(self._call(chunk)[:size - short])
        return torch.cat(parts) if parts else self._call(inputs)

    def _predict_raw(self, X: np.ndarray) -> Any:
        return self._forward_numpy([X])

    def _forward_numpy(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        n = arrays[0].shape[0]
        outs = []
        with torch.no_grad():
            for rows in row_blocks(n, self.max_batch):
                tensors = self._convert([a[rows] for a in arrays])
                outs.append(self.torch_forward(*tensors).to("cpu", torch.float64).numpy())
        return np.concatenate(outs) if outs else np.zeros((0, self.n_outputs))

    def predict(self, X: Any) -> np.ndarray:
        """``(n, n_outputs)`` float64 outputs; a tuple of arrays for multi-input models."""
        arrays = self.check_inputs(X)
        if len(arrays) == 1:
            return super().predict(arrays[0])
        out = self._forward_numpy(arrays)
        if not np.all(np.isfinite(out)):
            bad = int(np.count_nonzero(~np.isfinite(out)))
            raise InputError(f"model {self.name!r} returned {bad} non-finite output value(s)")
        return out

    # ---------------------------------------------------------------- layers and identity

    def layer_names(self) -> list[str]:
        """``named_modules()`` names of the module (the root, named ``""``, left out)."""
        if not self.layered:
            return []
        return [name for name, _ in self.module.named_modules() if name]

    def layer(self, name: str) -> Any:
        """The submodule called ``name``; InputError with close names otherwise."""
        if not self.layered:
            raise InputError(f"model {self.name!r} has no named layers (a torch.export program "
                             "is a flat graph); load the nn.Module or TorchScript instead")
        modules = dict(self.module.named_modules())
        if name and name in modules:
            return modules[name]
        close = difflib.get_close_matches(name, [n for n in modules if n], n=3, cutoff=0.5)
        hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close else
                f"layers: {', '.join([n for n in modules if n][:20]) or 'none'}")
        raise InputError(f"model {self.name!r} has no layer {name!r}; {hint}")

    def hyperparameters(self) -> Hyperparameters:
        """Leaf modules with parameter counts, and the totals."""
        return torch_hyperparameters(self.module)

    def fingerprint(self) -> str:
        """SHA-256 of the model file, or of the module's state dict and class name."""
        if self.file_hash:
            return self.file_hash
        if self.state_hash is None:
            self.state_hash = module_sha256(self.module)
        return self.state_hash

    # ---------------------------------------------------------------- randomization

    def randomizations(self) -> tuple[str, ...]:
        """``layers`` when the module has layers owning parameters (capability
        ``randomization``; see :mod:`xaudit.adapters.torch.randomize`)."""
        return (LAYERS,) if parameter_layers(self.module) else ()

    def randomized(self, request: Randomization,
                   rng: np.random.Generator) -> tuple[RandomizedStage, ...]:
        """One model per stage of layer re-initialisation (seeded by ``request.reinit_seed``;
        ``rng`` is not used), each on a deep copy of the module: this model is unchanged."""
        if request.kind != LAYERS:
            raise refusal(self, request.kind)
        return tuple(
            RandomizedStage(layer, dataclasses.replace(
                self, name=f"{self.name} (randomized {request.mode} to {layer})",
                module=module, file_hash=None, state_hash=None))
            for layer, module in randomized_modules(self.module, request, self.name))


# -------------------------------------------------------------------- output selection


def select_output(raw: Any, key: Key) -> torch.Tensor:
    """The tensor ``key`` selects in a forward's output (the output itself when ``key`` is empty).

    Tuples and lists take int indices, mappings (Hugging Face ``ModelOutput`` included) take
    keys or positions, other objects take attribute names. Errors list what is available.
    """
    value = raw
    for depth, step in enumerate(key):
        value = _pick(value, step, key[:depth])
    if isinstance(value, torch.Tensor):
        return value
    where = f"output_key {list(key)} selects" if key else "the model returns"
    options = available_outputs(value)
    if not options:
        raise ModelLoadError(f"{where} a {type(value).__name__}, not a tensor")
    verb = "set output_key to one of" if not key else "add one of these to output_key"
    raise ModelLoadError(f"{where} a {type(value).__name__}; {verb}: {', '.join(options)}")


def _pick(value: Any, step: int | str, path: Key) -> Any:
    where = f"output{''.join(f'[{p!r}]' for p in path)}"
    if isinstance(value, torch.Tensor):
        raise ModelLoadError(f"output_key step {step!r} given, but {where} is already a tensor "
                             f"shaped {tuple(value.shape)}")
    try:
        if isinstance(value, Mapping):
            return value[step] if isinstance(step, str) else list(value.values())[step]
        if isinstance(value, tuple | list):
            return getattr(value, step) if isinstance(step, str) else value[step]
        if isinstance(step, str):
            return getattr(value, step)
    except (KeyError, IndexError, AttributeError):
        pass
    raise ModelLoadError(f"{where} has no element {step!r}; available: "
                         f"{', '.join(available_outputs(value)) or 'none'}")


def available_outputs(value: Any) -> list[str]:
    """What an output container offers, as ``key (tensor shape)`` strings."""
    if isinstance(value, Mapping):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, tuple | list):
        fields = getattr(value, "_fields", None)
        items = list(zip(fields, value, strict=True)) if fields else list(enumerate(value))
    elif dataclasses.is_dataclass(value):
        items = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    else:
        items = [(k, v) for k, v in vars(value).items() if not k.startswith("_")] if hasattr(
            value, "__dict__") else []
    return [f"{k!r} ({_describe(v)})" for k, v in items]


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)}"
    if isinstance(value, tuple | list):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -------------------------------------------------------------------- fingerprint


def module_sha256(module: Any, extra: str = "") -> str:
    """SHA-256 over the class's qualified name and each state-dict entry in order.

    Each tensor contributes its name, dtype, shape and raw bytes (CPU, contiguous), so the
    hash is independent of device and memory layout but not of dtype.
    """
    digest = hashlib.sha256(f"{qualified_name(module)};{extra};".encode())
    for name, value in module.state_dict().items():
        if not isinstance(value, torch.Tensor):
            digest.update(f"{name};{value!r};".encode())
            continue
        tensor = value.detach().to("cpu").contiguous()
        digest.update(f"{name};{tensor.dtype};{tuple(tensor.shape)};".encode())
        try:
            raw: Any = tensor.reshape(-1).view(torch.uint8).numpy()
            digest.update(memoryview(raw))
        except (RuntimeError, TypeError):  # quantized or otherwise unviewable tensors
            digest.update(repr(tensor.tolist()).encode())
    return digest.hexdigest()


def qualified_name(module: Any) -> str:
    """``package.module.Class`` of a module (TorchScript: the scripted class's name)."""
    original = getattr(module, "original_name", None)
    if isinstance(module, torch.jit.ScriptModule) and isinstance(original, str):
        return f"torchscript:{original}"
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"
