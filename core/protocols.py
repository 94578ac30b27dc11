"""Structural checks against runtime-checkable protocols, at the cost of a few ``hasattr``.

``isinstance(obj, SomeProtocol)`` on Python 3.11 lists the protocol's members by walking its
MRO on every call (about 0.1 ms for :class:`~xaudit.model.Model`); the host asks it several
times per explanation, which is a measurable share of a millisecond-scale saliency call.
:func:`conforms` lists the members once per protocol and then answers as ``isinstance`` does.
"""

from __future__ import annotations

import inspect
from functools import cache


def conforms(obj: object, protocol: type) -> bool:
    """``isinstance(obj, protocol)`` for a runtime-checkable ``protocol``: true when ``obj``
    is a subclass instance, or has every member the protocol (and its protocol bases) declares
    and no method member of it is ``None``."""
    if protocol in type(obj).__mro__:
        return True
    for name, is_method in _members(protocol):
        if not hasattr(obj, name) or (is_method and getattr(obj, name) is None):
            return False
    return True


@cache
def _members(protocol: type) -> tuple[tuple[str, bool], ...]:
    """``(name, is a method)`` of each public member (annotated attribute or function) that
    ``protocol`` and its protocol bases declare."""
    found: dict[str, bool] = {}
    for base in reversed(protocol.__mro__):
        if not getattr(base, "_is_protocol", False) or base.__module__ == "typing":
            continue
        for name in inspect.get_annotations(base):
            found.setdefault(name, False)
        for name, value in vars(base).items():
            if not name.startswith("_") and callable(value):
                found[name] = True
    return tuple(sorted((name, method) for name, method in found.items()
                        if not name.startswith("_")))
