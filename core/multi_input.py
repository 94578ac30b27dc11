"""Inputs of multi-input models (torch, ONNX): one array per named input, equal row counts.

Explainers and checks see one input per row. A multi-input model is therefore explained
through :class:`PackedModel`: each row is every input flattened and concatenated, in the order
the model's forward takes them; ``Explanation.per_input()`` turns packed attributions back into
one array per input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np

from .errors import InputError
from .model import InputSpec, Model
from .randomization import Randomization, RandomizedStage, offered, randomize


def split_inputs(X: Any, input_names: Sequence[str], model_name: str) -> list[Any]:
    """``X`` as one part per input: a mapping by input name, a tuple/list of arrays, or, for a
    single-input model, the array itself."""
    names = list(input_names)
    if isinstance(X, Mapping):
        missing = [n for n in names if n not in X]
        if missing:
            raise InputError(f"model {model_name!r} inputs are {names}; missing {missing}")
        return [X[n] for n in names]
    is_group = isinstance(X, tuple) or (
        isinstance(X, list) and all(hasattr(part, "shape") for part in X))
    if len(names) == 1:
        return [X[0]] if is_group and len(X) == 1 else [X]
    if not is_group or len(X) != len(names):
        got = f"{len(X)} arrays" if is_group else f"a single {type(X).__name__}"
        raise InputError(f"model {model_name!r} takes {len(names)} inputs "
                         f"({', '.join(names)}): pass a tuple of arrays, one per input; "
                         f"got {got}")
    return list(X)


def check_row_counts(arrays: Sequence[np.ndarray], input_names: Sequence[str],
                     model_name: str) -> None:
    """Refuse inputs whose row counts differ, listing each input's count."""
    if len({a.shape[0] for a in arrays}) > 1:
        counts = ", ".join(f"{n}: {a.shape[0]}" for n, a in zip(input_names, arrays,
                                                               strict=True))
        raise InputError(f"model {model_name!r} inputs have different row counts ({counts})")


@dataclass(frozen=True)
class InputSlot:
    """Where one model input lies in a packed row: columns ``offset:offset + size``."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int

    @property
    def size(self) -> int:
        """Number of packed columns."""
        return int(np.prod(self.shape, dtype=np.int64))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (stored in explanations' ``metadata["inputs"]``)."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "offset": self.offset, "size": self.size}


def input_slots(model: Any) -> tuple[InputSlot, ...]:
    """The packed layout of a model's inputs, in the order its forward takes them."""
    slots, offset = [], 0
    for name, spec in zip(model.input_names, model.input_specs, strict=True):
        slots.append(InputSlot(str(name), tuple(spec.feature_shape), spec.dtype, offset))
        offset += slots[-1].size
    return tuple(slots)


def is_multi_input(model: object) -> bool:
    """Whether ``model`` takes more than one input array."""
    return len(getattr(model, "input_specs", ()) or ()) > 1


def pack_rows(slots: Sequence[InputSlot], X: Any, model_name: str) -> np.ndarray:
    """Rows of every input flattened and concatenated: ``(n, sum of sizes)`` float64.

    ``X`` is a tuple/list/mapping of arrays (one per input) or an already packed array.
    """
    total = sum(slot.size for slot in slots)
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == total:
        return np.asarray(X, dtype=np.float64)
    parts = split_inputs(X, [s.name for s in slots], model_name)
    arrays = []
    for slot, part in zip(slots, parts, strict=True):
        array = np.asarray(part)
        if array.ndim == len(slot.shape):
            array = array[None, ...]
        if tuple(array.shape[1:]) != slot.shape:
            raise InputError(f"model {model_name!r} input {slot.name!r} expects rows shaped "
                             f"{slot.shape}, got {tuple(array.shape[1:])}")
        arrays.append(array.reshape(array.shape[0], -1).astype(np.float64))
    check_row_counts(arrays, [s.name for s in slots], model_name)
    return np.concatenate(arrays, axis=1)


def unpack_rows(slots: Sequence[InputSlot], packed: Any) -> tuple[Any, ...]:
    """Packed rows (a numpy array or a tensor) back to one array per input, each reshaped."""
    n = packed.shape[0]
    return tuple(packed[:, s.offset:s.offset + s.size].reshape(n, *s.shape) for s in slots)


def packed_feature_names(slots: Sequence[InputSlot]) -> tuple[str, ...]:
    """``name`` for one-value inputs, ``name[i,j,...]`` for each element of the others."""
    names: list[str] = []
    for slot in slots:
        if slot.size == 1:
            names.append(slot.name)
            continue
        names.extend(f"{slot.name}[{','.join(map(str, index))}]"
                     for index in np.ndindex(*slot.shape))
    return tuple(names)


class PackedModel:
    """A multi-input model seen as a single-input one: each row is every input flattened and
    concatenated (see :func:`pack_rows`), so every explainer and check works on it unchanged
    and attributions split back per input with ``Explanation.per_input()``.

    The wrapped model's name, outputs, task and fingerprint are kept; ``predict`` unpacks the
    rows, casting each input to its declared dtype (token ids stay exact as float64 up to 2**53).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.slots = input_slots(inner)
        self.name: str = inner.name
        self.adapter: str = inner.adapter
        self.task = inner.task
        self.capabilities: frozenset[str] = inner.capabilities
        self.capability_reasons: dict[str, str] = getattr(inner, "capability_reasons", {})
        self.framework: str = inner.framework
        self.framework_version: str = inner.framework_version
        width = sum(s.size for s in self.slots)
        # Packed rows are flat feature vectors: methods for tabular data apply; image-only
        # methods (Grad-CAM, sliding windows, superpixels) need the image input on its own.
        self.input_spec = InputSpec((width,), "float64", "tabular",
                                    packed_feature_names(self.slots))
        self.input_names = ("packed",)
        self.input_specs = (self.input_spec,)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The wrapped model's output names."""
        return tuple(self.inner.output_names)

    def __repr__(self) -> str:
        return f"PackedModel({self.inner!r}, inputs={[s.name for s in self.slots]})"

    def unpack(self, X: Any) -> tuple[np.ndarray, ...]:
        """Packed numpy rows as one correctly typed array per input."""
        packed = pack_rows(self.slots, X, self.name)
        return tuple(np.asarray(part, dtype=slot.dtype)
                     for slot, part in zip(self.slots, unpack_rows(self.slots, packed),
                                           strict=True))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The wrapped model's outputs on the unpacked rows."""
        return np.asarray(self.inner.predict(self.unpack(X)))

    def fingerprint(self) -> str:
        """The wrapped model's fingerprint."""
        return str(self.inner.fingerprint())

    def randomizations(self) -> tuple[str, ...]:
        """The kinds the wrapped model can randomize (capability ``randomization``)."""
        return offered(self.inner)

    def randomized(self, request: Randomization,
                   rng: np.random.Generator) -> tuple[RandomizedStage, ...]:
        """The wrapped model's randomized stages, each packed as this model is.

        Packed rows are not the wrapped model's inputs, so ``request`` reaches it without
        probe and training rows: a kind that needs them (``leaves``, ``labels``) is refused
        with an InputError rather than fed rows of another layout. Multi-input models offer
        ``layers``, which needs none.
        """
        bare = replace(request, probe_rows=None, X_train=None, y_train=None)
        return tuple(RandomizedStage(stage.name, pack_inputs(stage.model))
                     for stage in randomize(self.inner, bare, rng))


class PackedDifferentiableModel(PackedModel):
    """:class:`PackedModel` of a model with gradients: one packed input tensor, split inside
    :meth:`torch_forward`, so gradients w.r.t. the packed tensor are the per-input gradients
    laid side by side. Named layers are the wrapped model's."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.device = inner.device
        self.dtype = inner.dtype

    def to_tensors(self, X: Any) -> tuple[Any, ...]:
        """Packed rows as one floating tensor on the wrapped model's device."""
        tensors = self.inner.to_tensors(self.unpack(X))
        floating = next((t.dtype for t in tensors if t.is_floating_point()), None)
        flat = [t.reshape(t.shape[0], -1).to(floating or self.dtype) for t in tensors]
        return (_concatenate(flat),)

    def torch_forward(self, *inputs: Any) -> Any:
        """The wrapped model's differentiable outputs for one packed input tensor."""
        if len(inputs) != 1:
            raise InputError(f"packed model {self.name!r} takes one packed tensor, "
                             f"got {len(inputs)}")
        parts = unpack_rows(self.slots, inputs[0])
        typed = [part.round().long() if slot.dtype.startswith("int") else part
                 for slot, part in zip(self.slots, parts, strict=True)]
        return self.inner.torch_forward(*typed)

    def layer_names(self) -> list[str]:
        """The wrapped model's layer names."""
        return list(self.inner.layer_names())

    def layer(self, name: str) -> Any:
        """The wrapped model's layer ``name``."""
        return self.inner.layer(name)


def _concatenate(tensors: Sequence[Any]) -> Any:
    import torch

    return torch.cat(list(tensors), dim=1)


def pack_inputs(model: Model) -> Model:
    """``model`` itself when it takes one input, else a packed view of it (with gradients and
    layers when ``model`` offers them)."""
    if not is_multi_input(model):
        return model
    if "gradients" in model.capabilities:
        return cast(Model, PackedDifferentiableModel(model))
    return cast(Model, PackedModel(model))
