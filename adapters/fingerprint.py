"""Stable SHA-256 fingerprints of models: file bytes, or canonical bytes of in-memory state.

The in-memory walk has no depth cap: it runs on an explicit stack (so a deeply nested
pipeline cannot hit Python's recursion limit) and remembers every container and object it has
entered, so a cycle or a shared sub-object is written as a back-reference to the ordinal of
its first visit instead of being walked again. Two objects built the same way therefore hash
the same, and two that differ anywhere in their fitted state, however deep, hash differently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from xaudit.manifest import file_sha256 as file_sha256  # the one file digest, re-exported

_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def state_sha256(obj: object) -> str:
    """SHA-256 over a canonical walk of an object's state.

    Scalars contribute their type and ``repr``; arrays their dtype, shape and bytes; mappings
    are walked in sorted key order, sets in sorted ``repr`` order; functions contribute their
    qualified name, byte code, constants and closure cells; a torch module (recognised by its
    ``state_dict`` method, without importing torch) its public attributes and state dict, a
    tensor its values; other objects their type's qualified name and ``__getstate__()`` (or
    ``__dict__``). Private attributes (leading underscore, e.g. scikit-learn's version tag)
    are skipped, so two equal models fitted in separate processes hash the same. A container
    or object seen before is written as ``ref:<ordinal>``, which ends cycles.
    """
    digest = hashlib.sha256()
    for chunk in _canonical_chunks(obj):
        digest.update(chunk)
    return digest.hexdigest()


_Token = bytes | tuple[object]  # raw bytes to write, or (object,) still to walk


def _canonical_chunks(root: object) -> Iterator[bytes]:
    """The canonical byte stream of ``root``, produced depth first from an explicit stack."""
    stack: list[_Token] = [(root,)]
    first_visit: dict[int, int] = {}
    keep_alive: list[object] = []  # ids stay unique while the walk holds its temporaries
    while stack:
        token = stack.pop()
        if isinstance(token, bytes):
            yield token
            continue
        obj = token[0]
        if isinstance(obj, _SCALARS):
            yield f"{type(obj).__name__}:{obj!r};".encode()
            continue
        if isinstance(obj, np.generic):
            stack.append((obj.item(),))
            continue
        if id(obj) in first_visit:
            yield f"ref:{first_visit[id(obj)]};".encode()
            continue
        first_visit[id(obj)] = len(first_visit)
        keep_alive.append(obj)
        head, children = _expand(obj)
        yield head
        stack.extend(reversed(children))


def _expand(obj: object) -> tuple[bytes, list[_Token]]:
    """What ``obj`` writes itself, and the tokens (bytes or children) that follow it."""
    if isinstance(obj, np.ndarray):
        return _expand_array(obj)
    if isinstance(obj, dict):
        return b"{", [*_mapping_tokens(obj, skip_private=False), b"}"]
    if isinstance(obj, list | tuple):
        return f"{type(obj).__name__}[".encode(), [*((item,) for item in obj), b"]"]
    if isinstance(obj, set | frozenset):
        return b"set[", [*((item,) for item in sorted(obj, key=repr)), b"]"]
    if isinstance(obj, type):  # a class held as a parameter (e.g. a vectorizer's dtype)
        return f"type:{obj.__module__}.{obj.__qualname__};".encode(), []
    if callable(obj) and hasattr(obj, "__code__"):
        return _expand_function(obj)
    return _expand_object(obj)


def _expand_array(array: np.ndarray) -> tuple[bytes, list[_Token]]:
    array = np.ascontiguousarray(array)
    head = f"nd{array.dtype.str}{array.shape};".encode()
    if array.dtype.hasobject:
        return head, [(item,) for item in array.ravel()]
    return head, [array.tobytes()]


def _expand_function(function: Any) -> tuple[bytes, list[_Token]]:
    code = function.__code__
    name = f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"
    constants = [c for c in code.co_consts if not hasattr(c, "co_code")]
    cells = [cell.cell_contents for cell in function.__closure__ or ()
             if _cell_is_filled(cell)]
    return f"fn:{name};".encode(), [code.co_code, (constants,), (cells,)]


def _cell_is_filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises on access
    except ValueError:
        return False
    return True


def _expand_object(obj: object) -> tuple[bytes, list[_Token]]:
    kind = type(obj)
    head = f"obj:{kind.__module__}.{kind.__qualname__};".encode()
    if _is_torch_tensor(obj):
        return head, [(_tensor_values(obj),)]
    state = obj.__getstate__() if hasattr(obj, "__getstate__") else None
    if state is None:
        state = getattr(obj, "__dict__", None)
    if _is_torch_module(obj):
        public = state if isinstance(state, dict) else {}
        module: Any = obj
        return head, [*_mapping_tokens(public, skip_private=True),
                      b"state_dict", (list(module.state_dict().items()),)]
    if isinstance(state, dict):
        return head, [b"{", *_mapping_tokens(state, skip_private=True), b"}"]
    if state is not None:
        return head, [(state,)]
    text = repr(obj)
    return head, [] if " at 0x" in text else [text.encode()]


def _mapping_tokens(mapping: dict[Any, Any], skip_private: bool) -> list[_Token]:
    tokens: list[_Token] = []
    for key in sorted(mapping, key=repr):
        if skip_private and isinstance(key, str) and key.startswith("_"):
            continue
        tokens += [(key,), (mapping[key],)]
    return tokens


def _is_torch_module(obj: object) -> bool:
    return _has_base(obj, "torch.nn.modules.module.Module")


def _is_torch_tensor(obj: object) -> bool:
    return _has_base(obj, "torch.Tensor")


def _has_base(obj: object, qualified: str) -> bool:
    """Whether ``obj``'s class derives from the class named ``qualified`` (no import needed)."""
    return any(f"{base.__module__}.{base.__qualname__}" == qualified
               for base in type(obj).__mro__)


def _tensor_values(tensor: Any) -> object:
    """A tensor's dtype, shape and values as plain data (bfloat16 and friends via lists)."""
    detached = tensor.detach().to("cpu")
    try:
        values: object = detached.numpy()
    except (RuntimeError, TypeError):
        values = detached.tolist()
    return [str(detached.dtype), tuple(detached.shape), values]
