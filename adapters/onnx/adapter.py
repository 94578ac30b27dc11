"""ONNX models (including Keras 3 models exported with ``model.export(path, format="onnx")``).

What the adapter accepts (``claims``): a path to a ``.onnx`` file, or an ``onnx.ModelProto``.
ONNX files are data, not code, so they load without ``trust``; a file that is not ONNX (a
zip, HDF5 or pickle file renamed, text, a truncated protobuf) is refused with a message saying
what it is.

The adapted model (:class:`~xaudit.adapters.onnx.model.OnnxModel`):

- predicts through an onnxruntime ``InferenceSession`` (CUDA execution provider when present
  and ``device`` allows it, else CPU), in batches of at most ``max_batch`` rows (or padded
  chunks when the graph fixes its batch size);
- reads input names, row shapes and element types from the graph; a multi-input graph takes a
  tuple of arrays, one per input, and describes each in ``input_specs``;
- records the data layout of image inputs in each input spec (``NHWC`` for Keras exports,
  ``NCHW`` for most PyTorch exports), found from the graph, the row shape or the ``layout``
  option; data are never transposed;
- selects one graph output (``output_key``, by name or index) and applies ``output``
  (``identity``, ``softmax`` or ``sigmoid``);
- offers ``gradients`` through a torch conversion of the graph
  (:mod:`xaudit.adapters.onnx.to_torch`) when every operator converts and the conversion
  matches onnxruntime to 1e-5 (relative and absolute) on a probe batch; otherwise the model
  keeps ``predict`` and ``gradient_status`` says why.

This module imports neither onnx, onnxruntime nor torch; :meth:`OnnxAdapter.load` does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field

from xaudit.errors import ModelLoadError
from xaudit.hookspecs import hookimpl
from xaudit.model import Modality, Model
from xaudit.plugin import Adapter, AdapterOptions
from xaudit.registry import Registry

ONNX_SUFFIX = ".onnx"


class OnnxOptions(AdapterOptions):
    """Options of the ``onnx`` adapter."""

    name: str | None = None
    """Model name shown in results (default: the file's name, or the graph's)."""
    device: str = "auto"
    """``auto`` (CUDA when onnxruntime and torch have it, else CPU), ``cpu``, ``cuda`` or
    ``cuda:N``; used by the onnxruntime session and the torch conversion."""
    max_batch: int = Field(256, ge=1)
    """Rows per onnxruntime call in ``predict``; bounds memory."""
    output: Literal["identity", "softmax", "sigmoid"] = "identity"
    """Transform of the selected graph output."""
    output_key: int | str | None = None
    """Graph output to explain, by name or index (required when the graph has several)."""
    layout: Literal["auto", "NHWC", "NCHW"] = "auto"
    """Data layout of image inputs (rows of rank 3). ``auto`` reads it from the graph (a
    transpose to channels-first before the first convolution means NHWC), else from the row
    shape; a stated layout the graph contradicts is refused. Data are never transposed."""
    feature_shape: list[int] | list[list[int]] | None = None
    """Row shape (one per input for several) where the graph leaves dimensions symbolic."""
    modality: Modality | list[Modality] | None = None
    """Per model or per input; default image for rank-3 rows, text for integer inputs,
    tabular for 1-D rows."""
    feature_names: list[str] | None = None
    """Names of the features of a single 1-D input."""
    gradients: bool = True
    """Convert the graph to torch for the ``gradients`` capability (checked against
    onnxruntime before use)."""


class OnnxAdapter(Adapter):
    """ONNX files and ``onnx.ModelProto`` objects, served by onnxruntime."""

    name = "onnx"
    summary = ("ONNX models (.onnx files, onnx.ModelProto), e.g. exported from Keras; "
               "onnxruntime predictions, gradients through a checked torch conversion.")
    priority = 20
    Options = OnnxOptions

    @classmethod
    def claims(cls, obj: object) -> bool:
        """``.onnx`` paths and ``onnx.ModelProto`` objects (without importing onnx)."""
        if isinstance(obj, str | Path):
            return Path(obj).suffix.lower() == ONNX_SUFFIX
        if "onnx" not in sys.modules:
            return False
        import onnx

        return isinstance(obj, onnx.ModelProto)

    @classmethod
    def load(cls, obj: object, options: AdapterOptions) -> Model:
        """Adapt a ModelProto or load a ``.onnx`` file; see the module docstring."""
        assert isinstance(options, OnnxOptions)
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ModelLoadError("the onnx adapter needs onnx and onnxruntime: pip install "
                                 "'xaudit[onnx]'") from None
        from xaudit.adapters.onnx.setup import load_onnx_model

        return load_onnx_model(obj, options, cls.name)


@hookimpl
def xaudit_register_adapters(registry: Registry[Adapter]) -> None:
    """Register the ``onnx`` adapter."""
    registry.add(OnnxAdapter)
