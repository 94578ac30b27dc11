"""Typed registries that plugins fill through the ``xaudit_register_*`` hooks.

Each registry remembers which plugin (and distribution) added each class, and refuses duplicate
names and malformed classes with a message naming the offending plugin.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import PluginError, UnknownNameError
from .plugin import class_problems

T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its registered name, the distribution it came from and its version."""

    name: str
    distribution: str
    version: str

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"plugin {self.name!r} (distribution {self.distribution}{version})"


class Registry(Generic[T]):
    """Classes of one kind (adapters, explainers, checks or report sections), by name."""

    def __init__(self, kind: str, base: type) -> None:
        self.kind = kind
        self.base = base
        self._classes: dict[str, type[T]] = {}
        self._origins: dict[str, PluginInfo] = {}
        self._current: PluginInfo | None = None

    @contextmanager
    def adding_for(self, plugin: PluginInfo) -> Iterator[Registry[T]]:
        """Attribute the classes added inside the block to ``plugin``."""
        previous, self._current = self._current, plugin
        try:
            yield self
        finally:
            self._current = previous

    def add(self, cls: type[T]) -> type[T]:
        """Register ``cls`` under its ``name``; usable as a decorator."""
        origin = self._current or PluginInfo("<direct>", "unknown", "")
        problems = class_problems(cls, self.base)
        if problems:
            raise PluginError(f"{origin} registered a malformed {self.kind}: {'; '.join(problems)}")
        name: str = cls.name  # type: ignore[attr-defined]
        if name in self._classes:
            raise PluginError(
                f"{origin} registered {self.kind} {name!r}, which {self._origins[name]} "
                "already registered; rename one of them or block a plugin"
            )
        self._classes[name] = cls
        self._origins[name] = origin
        return cls

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``, or :class:`UnknownNameError` with suggestions."""
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.suggest(name), self.names()) from None

    def suggest(self, name: str) -> list[str]:
        """Registered names close to ``name``."""
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        prefix = [n for n in self.names() if n.startswith(name) and n not in close]
        return close + prefix[: 3 - len(close)]

    def origin(self, name: str) -> PluginInfo:
        """The plugin that registered ``name``."""
        return self._origins[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._classes)

    def items(self) -> list[tuple[str, type[T]]]:
        """``(name, class)`` pairs, sorted by name."""
        return sorted(self._classes.items())

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __len__(self) -> int:
        return len(self._classes)
