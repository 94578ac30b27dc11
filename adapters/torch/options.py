"""Options and file suffixes of the ``torch`` adapter: a leaf module.

The adapter (:mod:`.adapter`), the loader (:mod:`.loading`) and the assembly step (:mod:`.setup`)
all import this module, and it imports none of them (nor torch), so no module of the adapter
imports another one back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from xaudit.model import Modality
from xaudit.plugin import AdapterOptions

TORCH_SUFFIXES = (".pt", ".pth", ".pt2", ".ts")
"""File suffixes the adapter claims."""


class TorchOptions(AdapterOptions):
    """Options of the ``torch`` adapter."""

    name: str | None = None
    """Model name shown in results (default: the module's class or the file's name)."""
    device: str = "auto"
    """``auto`` (CUDA when available, else CPU) or a torch device string (``cpu``, ``cuda:1``)."""
    dtype: Literal["float32", "float64"] = "float32"
    """Floating dtype of parameters and float inputs."""
    max_batch: int = Field(256, ge=1)
    """Rows per forward call in ``predict``; bounds memory."""
    output: Literal["logits", "softmax", "sigmoid", "identity"] = "logits"
    """Transform of the selected output: raw (``logits``/``identity``), softmax or sigmoid."""
    output_key: int | str | list[int | str] | None = None
    """Element of a tuple/list/dict/attribute-object output (a list selects nested elements)."""
    input_names: list[str] | None = None
    """Names of the forward's inputs (default: its parameter names)."""
    feature_shape: list[int] | list[list[int]] | None = None
    """Shape of one row, or one shape per input for multi-input models."""
    input_dtypes: list[Literal["float", "int64"]] | None = None
    """Per input: ``float`` (cast to ``dtype``) or ``int64`` (token ids, not differentiable)."""
    modality: Modality | list[Modality] | None = None
    """Per model or per input; default image for 3-D rows, text for integer ones, else tabular."""
    feature_names: list[str] | None = None
    """Names of the features of a single 1-D input."""
    factory: str | None = None
    """``module:function`` building the ``nn.Module`` a state-dict file is loaded into."""
    factory_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of ``factory``."""
    weights: str | None = None
    """A state-dict file loaded (``weights_only=True``) into a copy of a module given as an
    object; relative to the working directory."""
    weights_key: str | None = None
    """Entry of a checkpoint dict holding the state dict (for example ``state_dict``)."""
