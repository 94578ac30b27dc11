"""An ONNX model as an xaudit :class:`~xaudit.model.Model` (and, when converted, differentiable).

``predict`` runs the onnxruntime session in bounded batches; ``torch_forward`` runs the graph's
torch conversion (:mod:`xaudit.adapters.onnx.to_torch`), offered only after it matched
onnxruntime on a probe batch. Inputs keep the layout the graph takes (an image model exported
from Keras takes NHWC rows): nothing is transposed, and :class:`OnnxInputSpec` records the
layout so explainers and reports can tell channels from pixels.

This module imports neither onnxruntime nor torch at import time; torch is imported by the
methods that need it, so a model without gradients works where torch is not installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from xaudit.adapters.hyperparameters import onnx_hyperparameters
from xaudit.batching import row_blocks
from xaudit.errors import CapabilityError, InputError
from xaudit.hyperparameters import Hyperparameters
from xaudit.model import InputSpec, ModelBase
from xaudit.multi_input import check_row_counts, split_inputs

Layout = Literal["NHWC", "NCHW"]
Transform = Literal["identity", "softmax", "sigmoid"]


@dataclass(frozen=True)
class OnnxInputSpec(InputSpec):
    """An :class:`InputSpec` with the data layout of image inputs.

    ``layout`` is ``"NHWC"`` (rows ``(height, width, channels)``, as Keras exports take them),
    ``"NCHW"`` (rows ``(channels, height, width)``) or ``None`` for non-image inputs and
    undecidable ones; ``layout_source`` says how it was found (``graph``, ``shape``,
    ``option``).
    """

    layout: Layout | None = None
    layout_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, layout included."""
        return {**super().to_dict(), "layout": self.layout, "layout_source": self.layout_source}


@dataclass(eq=False, repr=False)
class OnnxModel(ModelBase):
    """An ONNX graph served by onnxruntime, with an optional verified torch conversion.

    ``predict`` takes one array, or for multi-input graphs a tuple/list (or a mapping by input
    name) of arrays with the same number of rows, in :attr:`input_names` order.

    It offers no ``randomization`` (:mod:`xaudit.randomization`), by design: the graph's
    weights are initializers that the torch conversion holds as constant buffers of one
    interpreted module, not layers with an initialisation scheme of their own to redraw (what
    Adebayo et al. 2018's layer randomization re-runs), and the onnxruntime session that
    serves ``predict`` cannot take changed weights without re-serialising the graph. Randomize
    the model the graph was exported from (torch, scikit-learn) instead.
    """

    session: Any = None
    input_names: tuple[str, ...] = ()
    input_specs: tuple[OnnxInputSpec, ...] = ()
    graph_outputs: tuple[str, ...] = ()
    output_index: int = 0
    output: Transform = "identity"
    max_batch: int = 256
    fixed_batch: int | None = None
    """Set when the graph's batch axis is a fixed number: rows go in padded chunks of it."""
    file_hash: str = ""
    providers: tuple[str, ...] = ()
    producer: str = ""
    opset: int = 0
    torch_module: Any = None
    device: Any = None
    dtype: Any = None
    differentiable_inputs: tuple[bool, ...] = ()
    """Per input: whether it is floating-point (integer ids cannot carry gradients)."""
    gradient_status: str = ""
    """Why the ``gradients`` capability is offered or not (the converter's or checker's word)."""
    conversion_check: dict[str, Any] | None = None
    node_count: int = 0
    initializer_count: int = 0

    def __repr__(self) -> str:
        return (f"OnnxModel(name={self.name!r}, inputs={list(self.input_names)}, "
                f"output={self.graph_outputs[self.output_index]!r}, "
                f"capabilities={sorted(self.capabilities)})")

    @property
    def n_inputs(self) -> int:
        """Number of graph inputs."""
        return len(self.input_names)

    # ---------------------------------------------------------------- inputs

    def check_inputs(self, X: Any) -> list[np.ndarray]:
        """One array per input, each ``(n, *feature_shape)`` with the same ``n``, or InputError."""
        arrays = []
        parts = split_inputs(X, self.input_names, self.name)
        for name, spec, part in zip(self.input_names, self.input_specs, parts, strict=True):
            array = np.asarray(part.detach().cpu().numpy() if hasattr(part, "detach") else part)
            if array.ndim == len(spec.feature_shape):
                array = array[None, ...]
            if tuple(array.shape[1:]) != spec.feature_shape:
                which = f" input {name!r}" if self.n_inputs > 1 else ""
                hint = _layout_hint(spec, tuple(array.shape[1:]))
                raise InputError(f"model {self.name!r}{which} expects rows shaped "
                                 f"{spec.feature_shape}, got {tuple(array.shape[1:])}{hint}")
            if spec.dtype.startswith(("int", "uint")) and array.dtype.kind == "f" and not (
                    np.array_equal(array, np.round(array))):
                raise InputError(f"model {self.name!r} input {name!r} takes integers "
                                 f"({spec.dtype}), got non-integer values")
            arrays.append(array)
        check_row_counts(arrays, self.input_names, self.name)
        return arrays


    # ---------------------------------------------------------------- onnxruntime

    def run_graph(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """The selected graph output for the rows of ``arrays``, before the output transform."""
        n = arrays[0].shape[0]
        step = self.fixed_batch or self.max_batch
        name = self.graph_outputs[self.output_index]
        parts = []
        for block in row_blocks(n, step):
            chunk = [a[block] for a in arrays]
            rows = chunk[0].shape[0]
            if self.fixed_batch and rows < self.fixed_batch:
                chunk = [np.concatenate([c, np.zeros((self.fixed_batch - rows, *c.shape[1:]),
                                                     c.dtype)]) for c in chunk]
            feeds = {input_name: np.ascontiguousarray(c, dtype=spec.dtype)
                     for input_name, spec, c in zip(self.input_names, self.input_specs, chunk,
                                                    strict=True)}
            out = np.asarray(self.session.run([name], feeds)[0])
            if out.ndim == 0 or out.shape[0] != chunk[0].shape[0]:
                raise InputError(f"model {self.name!r} returned an output shaped {out.shape} "
                                 f"for {chunk[0].shape[0]} rows")
            out = out[:rows]
            parts.append(out.reshape(rows, -1) if out.ndim != 1 else out[:, None])
        if not parts:
            return np.zeros((0, self.n_outputs))
        return np.concatenate(parts).astype(np.float64)

    def _predict_raw(self, X: np.ndarray) -> Any:
        return _transform(self.run_graph([X]), self.output)

    def predict(self, X: Any) -> np.ndarray:
        """``(n, n_outputs)`` float64 outputs; a tuple of arrays for multi-input models."""
        arrays = self.check_inputs(X)
        if len(arrays) == 1:
            return super().predict(arrays[0])
        out = _transform(self.run_graph(arrays), self.output)
        if out.shape != (arrays[0].shape[0], self.n_outputs):
            raise InputError(f"model {self.name!r} returned shape {out.shape}; expected "
                             f"({arrays[0].shape[0]}, {self.n_outputs})")
        if not np.all(np.isfinite(out)):
            bad = int(np.count_nonzero(~np.isfinite(out)))
            raise InputError(f"model {self.name!r} returned {bad} non-finite output value(s)")
        return out

    # ---------------------------------------------------------------- torch

    def _require_torch(self) -> None:
        if self.torch_module is None:
            raise CapabilityError(f"model {self.name!r} offers no gradients: "
                                  f"{self.gradient_status}")

    def to_tensors(self, X: Any) -> tuple[Any, ...]:
        """Numpy input(s) as tensors on :attr:`device`, in each graph input's element type."""
        self._require_torch()
        import torch

        return tuple(torch.as_tensor(np.ascontiguousarray(a, dtype=spec.dtype)).to(self.device)
                     for a, spec in zip(self.check_inputs(X), self.input_specs, strict=True))

    def torch_forward(self, *inputs: Any) -> Any:
        """The selected, transformed ``(n, n_outputs)`` output of the torch conversion.

        Differentiable; autograd follows the caller's grad mode. On CUDA, TF32 convolutions
        are switched off for the call, as the conversion was checked in full float32.
        """
        self._require_torch()
        import torch

        if len(inputs) != self.n_inputs:
            raise InputError(f"model {self.name!r} takes {self.n_inputs} input tensor(s) "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        from xaudit.adapters.onnx.to_torch import full_precision

        n = int(inputs[0].shape[0])
        with full_precision(self.device):
            out = self.torch_module(*inputs)[self.output_index]
        out = out.reshape(n, -1)
        if self.output == "softmax":
            return torch.softmax(out, dim=1)
        if self.output == "sigmoid":
            return torch.sigmoid(out)
        return out

    # ---------------------------------------------------------------- identity

    def hyperparameters(self) -> Hyperparameters:
        """Opset, producer, node and initializer counts, inputs and outputs."""
        return onnx_hyperparameters(self.producer, self.opset, self.node_count,
                                    self.initializer_count, list(self.input_names),
                                    list(self.graph_outputs))

    def fingerprint(self) -> str:
        """SHA-256 of the ONNX file's bytes (or of the serialized ModelProto)."""
        return self.file_hash


def _transform(raw: np.ndarray, output: Transform) -> np.ndarray:
    if output == "softmax":
        shifted = raw - raw.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))
    if output == "sigmoid":
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * raw)))
    return raw


def _layout_hint(spec: OnnxInputSpec, got: tuple[int, ...]) -> str:
    if spec.layout and len(got) == 3 and sorted(got) == sorted(spec.feature_shape):
        axes = "height, width, channels" if spec.layout == "NHWC" else "channels, height, width"
        return (f"; the model takes {spec.layout} images, rows ({axes}); xaudit does not "
                "transpose data")
    return ""
