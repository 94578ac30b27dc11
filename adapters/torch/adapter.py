"""PyTorch models: ``nn.Module`` objects, state dicts with a factory, TorchScript, torch.export.

What the adapter accepts (``claims``):

- an ``nn.Module`` (TorchScript modules included) or a ``torch.export.ExportedProgram``;
- a ``.pt`` / ``.pth`` file holding a state dict (give ``factory: "module:function"`` to build
  the architecture; read with ``torch.load(weights_only=True)``) or a TorchScript archive;
- a ``.ts`` TorchScript archive (``torch.jit.load``);
- a ``.pt2`` ``torch.export`` archive (``torch.export.load``).

A full pickled module (``torch.save(model)``) can run arbitrary code when unpickled and is
refused unless ``trust: true`` (see https://pytorch.org/docs/stable/notes/serialization.html).
``torch.export.load`` itself unpickles some parts of an archive (custom objects, pickled weights,
sample inputs that ``weights_only`` rejects); such archives are refused the same way.

The adapted model (:class:`~xaudit.adapters.torch.model.TorchModel`) is put in eval mode, runs
on CUDA when available (or ``device``), in ``dtype`` (float32 or float64), in batches of at most
``max_batch`` rows under ``torch.no_grad()``, and offers the ``gradients`` capability through
``torch_forward`` and, except for exported programs, ``layers`` through ``named_modules()``.
A module object that needs another device or dtype is deep-copied first, so the caller's module
keeps its parameters (``eval()`` is applied in place, as before any explanation).

Integer inputs (token ids) stay integer (``input_dtypes``, or inferred when the first layer is
an ``nn.Embedding``). The model cannot be differentiated with respect to such an input
(``differentiable_inputs`` is false for it); it keeps the ``gradients`` capability because
layer methods (integrated gradients on the embedding layer) differentiate from a layer onwards.

This module imports torch only inside :meth:`TorchAdapter.load`, so ``import xaudit`` and the
plugin host never import it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from xaudit.errors import ModelLoadError
from xaudit.hookspecs import hookimpl
from xaudit.model import Modality, Model
from xaudit.plugin import Adapter, AdapterOptions
from xaudit.registry import Registry

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


class TorchAdapter(Adapter):
    """PyTorch modules, state dicts with a factory, TorchScript and torch.export archives."""

    name = "torch"
    summary = ("PyTorch nn.Module, state dict + factory (weights_only), TorchScript, "
               "torch.export (.pt2).")
    priority = 20
    Options = TorchOptions

    @classmethod
    def claims(cls, obj: object) -> bool:
        """Torch modules and exported programs, or files with a torch suffix.

        An object can only be a torch module if torch is already imported, so this never
        imports torch itself.
        """
        if isinstance(obj, str | Path):
            return Path(obj).suffix in TORCH_SUFFIXES
        if "torch" not in sys.modules:
            return False
        import torch

        return isinstance(obj, torch.nn.Module | torch.export.ExportedProgram)

    @classmethod
    def load(cls, obj: object, options: AdapterOptions) -> Model:
        """Adapt a module or load one from a file; see the module docstring for the routes."""
        assert isinstance(options, TorchOptions)
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ModelLoadError("the torch adapter needs PyTorch: pip install "
                                 "'xaudit[torch]'") from None
        from xaudit.adapters.torch.setup import load_torch_model

        return load_torch_model(obj, options, cls.name)


@hookimpl
def xaudit_register_adapters(registry: Registry[Adapter]) -> None:
    """Register the ``torch`` adapter."""
    registry.add(TorchAdapter)
