"""Options and file suffix of the ``onnx`` adapter: a leaf module.

The adapter (:mod:`.adapter`) and the loading step (:mod:`.setup`) both import this module, and
it imports neither of them (nor onnx, onnxruntime or torch), so no module of the adapter imports
another one back.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from xaudit.model import Modality
from xaudit.plugin import AdapterOptions

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
