"""Reading an ONNX model from a file or a ModelProto, refusing files that are not ONNX.

An ONNX file is a serialized ``ModelProto`` (https://onnx.ai/onnx/repo-docs/IR.html). Before
parsing, the first bytes are compared with the signatures of the files most often given by
mistake (a Keras ``.keras`` zip, an HDF5 ``.h5``, a pickle, text), so the error says what the
file is; after parsing, a model without a graph is refused, and ``onnx.checker`` validates the
rest. Tensors stored as external data are loaded from the model file's folder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xaudit.errors import ModelLoadError

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a zip archive (a Keras .keras file, a PyTorch .pt or .pt2 archive, or "
                    "another zip)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?)"),
    (b"\x80", "a Python pickle (a joblib or torch.save file?)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x7fELF", "an executable"),
)
TEXT_BYTES = frozenset(range(32, 127)) | {9, 10, 13}


@dataclass
class Source:
    """A parsed model: the proto, the bytes to give onnxruntime and the fingerprint."""

    proto: Any
    data: bytes
    path: Path | None
    sha256: str
    name: str
    external: bool = False


def read_source(obj: object) -> Source:
    """Parse a ``.onnx`` path or take a ``ModelProto``; ModelLoadError when it is not ONNX."""
    import onnx

    if isinstance(obj, onnx.ModelProto):
        _check_structure(obj, "the ModelProto")
        data = obj.SerializeToString(deterministic=True)
        _validate(obj, "the ModelProto")
        return Source(obj, data, None, hashlib.sha256(data).hexdigest(),
                      obj.graph.name or "onnx model")
    path = Path(str(obj))
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    data = path.read_bytes()
    what = sniff(data)
    if what:
        raise ModelLoadError(f"{path.name} is not an ONNX model: it is {what}. Export the "
                             "model to ONNX first (Keras: model.export(path, format='onnx'))")
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as exc:
        raise ModelLoadError(f"{path.name} is not an ONNX model: it does not parse as an ONNX "
                             f"protobuf ({type(exc).__name__}: {exc})") from None
    _check_structure(proto, path.name)
    digest = hashlib.sha256(data)
    external = _external_locations(proto)
    if external:
        from onnx.external_data_helper import load_external_data_for_model

        folder = path.parent.resolve()
        for location in external:
            if not (folder / location).resolve().is_relative_to(folder):
                raise ModelLoadError(f"{path.name} refers to external data outside its folder "
                                     f"({location!r}); refusing to read it")
        load_external_data_for_model(proto, str(path.parent))
        for location in external:
            digest.update((path.parent / location).read_bytes())
    _validate(str(path) if external else proto, path.name)
    return Source(proto, data, path, digest.hexdigest(), path.stem, bool(external))


def sniff(data: bytes) -> str | None:
    """What ``data`` is when its first bytes show it is not ONNX (``None`` otherwise)."""
    if not data:
        return "an empty file"
    for signature, what in SIGNATURES:
        if data.startswith(signature):
            return what
    head = data[:512]
    if all(byte in TEXT_BYTES for byte in head):
        return "a text file"
    return None


def _check_structure(proto: Any, what: str) -> None:
    if proto.ir_version <= 0 or not proto.HasField("graph") or not proto.graph.output:
        raise ModelLoadError(f"{what} is not an ONNX model: it holds no graph with outputs "
                             f"(ir_version {proto.ir_version}, {len(proto.graph.node)} nodes)")


def _validate(model: Any, what: str) -> None:
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{what} is not a valid ONNX model: {first}") from None


def _external_locations(proto: Any) -> list[str]:
    from onnx.external_data_helper import uses_external_data

    locations = set()
    for tensor in proto.graph.initializer:
        if uses_external_data(tensor):
            for entry in tensor.external_data:
                if entry.key == "location":
                    locations.add(entry.value)
    return sorted(locations)
