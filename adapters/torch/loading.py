"""Finding the ``nn.Module`` behind an object or file, safely.

Routes (the options are in :mod:`xaudit.adapters.torch.options`):

- an ``nn.Module`` object (optionally with ``weights``: a state-dict file loaded into it);
- a state-dict file plus ``factory: "module:function"``, read with ``torch.load(...,
  weights_only=True)``, which unpickles only tensors and plain containers
  (https://pytorch.org/docs/stable/generated/torch.load.html);
- a TorchScript archive, read with ``torch.jit.load``
  (https://pytorch.org/docs/stable/generated/torch.jit.load.html);
- a ``torch.export`` archive, read with ``torch.export.load``
  (https://pytorch.org/docs/stable/export.html#serialization) after checking that it asks for
  no unpickling; an ``ExportedProgram`` object. Exported programs are flat graphs: no named
  layers, and their eval/train behaviour was fixed when they were exported. Autograd runs
  through their ATen graph, so gradients hold (the tests compare them with the eager module).

What happens next (input description, conversion, the probe) is in
:mod:`xaudit.adapters.torch.setup`.
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xaudit.adapters.fingerprint import file_sha256
from xaudit.adapters.torch.model import module_sha256
from xaudit.adapters.torch.options import TORCH_SUFFIXES, TorchOptions
from xaudit.errors import ModelLoadError
from xaudit.references import import_reference

TRUST_HINT = ("or, if you trust this file's origin, set 'trust: true' in the suite "
              "(trust=True in Python)")


@dataclass
class Source:
    """A module and what its origin tells about it."""

    module: Any
    label: str
    owned: bool
    """Created here (from a file): converted in place rather than copied."""
    file_hash: str | None = None
    layered: bool = True
    names: list[str] = field(default_factory=list)
    shapes: list[tuple[int, ...] | None] = field(default_factory=list)
    integer: list[bool] = field(default_factory=list)
    fixed_batch: int | None = None
    state_hash: str | None = None


# -------------------------------------------------------------------- sources


def resolve_source(obj: object, options: TorchOptions) -> Source:
    """The module behind ``obj``, loaded by the route its type or file content selects."""
    if isinstance(obj, str | Path):
        return _from_file(Path(obj), options)
    if isinstance(obj, torch.export.ExportedProgram):
        return _from_export(obj, "ExportedProgram", None)
    if isinstance(obj, torch.nn.Module):
        if options.factory is not None:
            raise ModelLoadError("'factory' builds the module a state-dict file is loaded "
                                 "into; a module object was given, so use 'weights' instead")
        source = Source(obj, type(obj).__name__, owned=False)
        if options.weights is not None:
            path = Path(options.weights)
            source.module = copy.deepcopy(obj)
            source.owned = True
            _load_state(source.module, _read_checkpoint(path, options), path, type(obj).__name__)
            source.file_hash = file_sha256(path)
        return source
    raise ModelLoadError(f"the torch adapter takes an nn.Module, an ExportedProgram or a model "
                         f"file, got {type(obj).__name__}")


def _from_file(path: Path, options: TorchOptions) -> Source:
    if path.suffix not in TORCH_SUFFIXES:
        raise ModelLoadError(f"the torch adapter reads .pt/.pth (state dict with 'factory', or "
                             f"TorchScript), .ts (TorchScript) and .pt2 (torch.export) files; "
                             f"got {path.name!r}")
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    if options.weights is not None:
        raise ModelLoadError(f"'weights' names a state-dict file, but the model is already the "
                             f"file {path.name}; give the state dict as the model path with "
                             "'factory', or pass a module object with 'weights'")
    kind = sniff(path)
    if path.suffix == ".pt2" and kind != "export":
        raise ModelLoadError(f"{path.name} is not a torch.export archive (written by "
                             f"torch.export.save); it looks like {KIND_TEXT[kind]}")
    if path.suffix == ".ts" and kind != "torchscript":
        raise ModelLoadError(f"{path.name} is not a TorchScript archive (written by "
                             f"torch.jit.save); it looks like {KIND_TEXT[kind]}")
    if kind in ("torchscript", "export") and options.factory is not None:
        raise ModelLoadError(f"{path.name} is {KIND_TEXT[kind]}, which holds its own "
                             "architecture; drop the 'factory' option")
    digest = file_sha256(path)
    if kind == "export":
        _check_export_archive(path, options.trust)
        return _from_export(torch.export.load(path), path.name, digest)
    if kind == "torchscript":
        jit_load: Any = torch.jit.load  # untyped in torch's annotations
        return Source(jit_load(str(path), map_location="cpu"), path.name, owned=True,
                      file_hash=digest)
    content = _read_checkpoint(path, options)
    if isinstance(content, torch.nn.Module):
        if options.factory is not None:
            raise ModelLoadError(f"{path.name} holds a whole module, not a state dict; drop "
                                 "the 'factory' option")
        return Source(content, path.name, owned=True, file_hash=digest)
    if options.factory is None:
        raise ModelLoadError(
            f"{path.name} holds a state dict (parameters without the architecture); give "
            "factory='module:function' naming a function that builds the nn.Module")
    module = build_from_factory(options.factory, options.factory_kwargs, path.parent)
    _load_state(module, content, path, options.factory)
    return Source(module, f"{type(module).__name__} ({path.name})", owned=True,
                  file_hash=digest)


KIND_TEXT = {
    "export": "a torch.export archive",
    "torchscript": "a TorchScript archive",
    "torch.save": "a torch.save file (state dict or pickled objects)",
    "unknown": "no PyTorch archive (torch.save, torch.jit.save and torch.export.save write zip "
               "archives)",
}


def sniff(path: Path) -> str:
    """``export``, ``torchscript``, ``torch.save`` or ``unknown``, from the zip's member names."""
    if not zipfile.is_zipfile(path):
        return "unknown"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(n.endswith("/archive_format") for n in names):
        return "export"
    if any("/code/" in n for n in names) or any(n.endswith("/constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        return "torch.save"
    return "unknown"


def _read_checkpoint(path: Path, options: TorchOptions) -> Any:
    """``torch.load(weights_only=True)``; pickled objects only with trust."""
    if not path.is_file():
        raise ModelLoadError(f"weights file {path} does not exist")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "Weights only load failed" not in str(exc):
            raise ModelLoadError(f"{path.name} is not a file torch.load can read "
                                 f"({type(exc).__name__}: {str(exc)[:200]})") from None
        if not options.trust:
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
            what = f" (it references {found.group(1)})" if found else ""
            raise ModelLoadError(
                f"refusing to load {path.name}: it holds pickled Python objects{what}, "
                "typically a whole module saved with torch.save(model), and unpickling them "
                "can run arbitrary code. torch.load(weights_only=True) only reads tensors. "
                "Save model.state_dict() and give factory='module:function' to rebuild the "
                "module, or save TorchScript (torch.jit.script(model).save) or a torch.export "
                f"archive (torch.export.save); {TRUST_HINT}") from None
        content = torch.load(path, map_location="cpu", weights_only=False)
    if options.weights_key is not None:
        if not isinstance(content, Mapping) or options.weights_key not in content:
            keys = list(content) if isinstance(content, Mapping) else []
            raise ModelLoadError(f"{path.name} has no entry {options.weights_key!r}; "
                                 f"entries: {keys}")
        content = content[options.weights_key]
    return content


def _load_state(module: Any, state: Any, path: Path, built_by: str) -> None:
    if not isinstance(state, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        kinds = (", ".join(f"{k!r}: {type(v).__name__}" for k, v in list(state.items())[:8])
                 if isinstance(state, Mapping) else type(state).__name__)
        raise ModelLoadError(f"{path.name} does not hold a state dict of tensors ({kinds}); "
                             "save model.state_dict(), or name the entry holding it with "
                             "'weights_key'")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"the state dict in {path.name} does not fit the "
                             f"{type(module).__name__} built by {built_by}: {exc}") from None


def build_from_factory(reference: str, kwargs: dict[str, Any], near: Path | None) -> Any:
    """Call the ``module:function`` named by ``reference``, imported by
    :func:`xaudit.references.import_reference` (the module is searched for next to ``near``
    first, then on ``sys.path``)."""
    factory = import_reference(reference, near, "factory")
    try:
        built = factory(**kwargs)
    except Exception as exc:
        raise ModelLoadError(f"factory {reference!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(built, torch.nn.Module):
        raise ModelLoadError(f"factory {reference!r} returned {type(built).__name__}, not an "
                             "nn.Module")
    return built


def _check_export_archive(path: Path, trust: bool) -> None:
    """Refuse (without trust) archives that ``torch.export.load`` would partly unpickle.

    It unpickles weights and constants marked ``use_pickle``, custom and opaque objects, and
    any ``.pt`` member (sample inputs, legacy weights) that ``weights_only`` rejects.
    """
    from torch.export.pt2_archive.constants import (
        TENSOR_CONSTANT_FILENAME_PREFIX,
        WEIGHT_FILENAME_PREFIX,
    )

    risky: list[str] = []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith("_config.json") and "/data/" in name:
                config = json.loads(archive.read(name)).get("config", {})
                for fqn, meta in config.items():
                    plain = str(meta.get("path_name", "")).startswith(
                        (WEIGHT_FILENAME_PREFIX, TENSOR_CONSTANT_FILENAME_PREFIX))
                    if meta.get("use_pickle") or not plain:
                        risky.append(f"{fqn} ({meta.get('path_name')})")
            elif name.endswith(".pt"):
                try:
                    torch.load(io.BytesIO(archive.read(name)), weights_only=True)
                except Exception:
                    risky.append(name)
    if risky and not trust:
        raise ModelLoadError(
            f"refusing to load {path.name}: torch.export.load would unpickle parts of it "
            f"({', '.join(risky[:5])}), which can run arbitrary code. Re-export without "
            f"custom objects, {TRUST_HINT}")


def _from_export(program: Any, label: str, digest: str | None) -> Source:
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    names: list[str] = []
    shapes: list[tuple[int, ...] | None] = []
    integer: list[bool] = []
    batches: set[int] = set()
    for name in program.graph_signature.user_inputs:
        value = placeholders[name].meta.get("val") if name in placeholders else None
        names.append(str(name))
        if not isinstance(value, torch.Tensor):
            shapes.append(None)
            integer.append(False)
            continue
        dims = list(value.shape)
        static = all(isinstance(d, int) for d in dims[1:])
        shapes.append(tuple(int(d) for d in dims[1:]) if static else None)
        integer.append(not (value.dtype.is_floating_point or value.dtype.is_complex))
        if dims and isinstance(dims[0], int):
            batches.add(int(dims[0]))
    module = program.module()
    state = None if digest else module_sha256(module, extra=str(program.graph_module.code))
    return Source(module, label, owned=True, file_hash=digest, layered=False,
                  names=names, shapes=shapes, integer=integer,
                  fixed_batch=min(batches) if batches else None, state_hash=state)
