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

from xaudit.adapters.torch.options import TORCH_SUFFIXES, TorchOptions
from xaudit.extras import require_extra
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Adapter, AdapterOptions
from xaudit.registry import Registry


class TorchAdapter(Adapter):
    """PyTorch modules, state dicts with a factory, TorchScript and torch.export archives."""

    name = "torch"
    extra = "torch"
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
        require_extra("torch", "the torch adapter")
        from xaudit.adapters.torch.setup import load_torch_model

        return load_torch_model(obj, options, cls.name)


@hookimpl
def xaudit_register_adapters(registry: Registry[Adapter]) -> None:
    """Register the ``torch`` adapter."""
    registry.add(TorchAdapter)
