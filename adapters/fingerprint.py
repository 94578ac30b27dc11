"""Stable SHA-256 fingerprints of models: file bytes, or canonical bytes of in-memory state."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from xaudit.manifest import file_sha256 as file_sha256  # the one file digest, re-exported

MAX_DEPTH = 12


def state_sha256(obj: object) -> str:
    """SHA-256 over a canonical walk of an object's state.

    Arrays contribute dtype, shape and bytes; mappings are walked in sorted key order; objects
    contribute their type's qualified name and ``__getstate__()`` (or ``__dict__``). Private
    attributes (leading underscore) and the library version tag are skipped, so two equal
    models fitted in separate processes hash the same.
    """
    digest = hashlib.sha256()
    _feed(digest, obj, 0)
    return digest.hexdigest()


def _feed(digest: Any, obj: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        digest.update(b"<deep>")
        return
    if obj is None or isinstance(obj, bool | int | float | str | bytes | complex):
        digest.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, np.ndarray):
        array = np.ascontiguousarray(obj)
        digest.update(f"nd{array.dtype.str}{array.shape};".encode())
        if array.dtype.hasobject:
            for item in array.ravel():
                _feed(digest, item, depth + 1)
        else:
            digest.update(array.tobytes())
    elif isinstance(obj, np.generic):
        _feed(digest, obj.item(), depth)
    elif isinstance(obj, dict):
        digest.update(b"{")
        for key in sorted(obj, key=repr):
            if isinstance(key, str) and key.startswith("_"):
                continue
            _feed(digest, key, depth + 1)
            _feed(digest, obj[key], depth + 1)
        digest.update(b"}")
    elif isinstance(obj, list | tuple):
        digest.update(b"[")
        for item in obj:
            _feed(digest, item, depth + 1)
        digest.update(b"]")
    elif callable(obj) and hasattr(obj, "__code__"):
        code = obj.__code__
        name = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
        digest.update(f"fn:{name};".encode())
        digest.update(code.co_code)
        _feed(digest, [c for c in code.co_consts if not hasattr(c, "co_code")], depth + 1)
    elif isinstance(obj, type):  # a class held as a parameter (e.g. a vectorizer's dtype)
        digest.update(f"type:{obj.__module__}.{obj.__qualname__};".encode())
    else:
        digest.update(f"obj:{type(obj).__module__}.{type(obj).__qualname__};".encode())
        state = obj.__getstate__() if hasattr(obj, "__getstate__") else None
        if state is None:
            state = getattr(obj, "__dict__", None)
        if isinstance(state, dict | list | tuple):
            _feed(digest, state, depth + 1)
        else:
            digest.update(repr(obj).encode())
