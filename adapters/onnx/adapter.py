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

from xaudit.adapters.onnx.options import ONNX_SUFFIX, OnnxOptions
from xaudit.adapters.onnx.setup import load_onnx_model
from xaudit.extras import require_extra
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Adapter, AdapterOptions
from xaudit.registry import Registry


class OnnxAdapter(Adapter):
    """ONNX files and ``onnx.ModelProto`` objects, served by onnxruntime."""

    name = "onnx"
    extra = "onnx"
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
        require_extra("onnx", "the onnx adapter")
        return load_onnx_model(obj, options, cls.name)


@hookimpl
def xaudit_register_adapters(registry: Registry[Adapter]) -> None:
    """Register the ``onnx`` adapter."""
    registry.add(OnnxAdapter)
