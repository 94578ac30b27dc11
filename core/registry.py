"""Typed registries that plugins fill through the ``xaudit_register_*`` hooks.

Each registry remembers which plugin (and distribution) added each class, and refuses duplicate
names and malformed classes with a message naming the offending plugin.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .blame import definition_site, plugin_error
from .errors import PluginError, UnknownNameError
from .plugin import class_problems

T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its registered name, the distribution it came from and its version."""

    name: str
    distribution: str
    version: str
    home: str | None = field(default=None, compare=False)
    """The folder of the plugin's module, where the blame for a failure is looked for."""

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"plugin {self.name!r} (distribution {self.distribution}{version})"

    def error(self, what: str, site: str | None = None) -> PluginError:
        """A :class:`PluginError` blaming this plugin for ``what`` (at ``site``), with the
        option that blocks it (see :mod:`xaudit.blame`)."""
        return plugin_error(self, self.name, what, site)


class Registry(Generic[T]):
    """Classes of one kind (adapters, explainers, checks or report sections), by name."""

    def __init__(self, kind: str, base: type) -> None:
        self.kind = kind
        self.base = base
        self._classes: dict[str, type[T]] = {}
        self._origins: dict[str, PluginInfo] = {}
        self._current: PluginInfo | None = None
        self.why_unknown: Callable[[str], str] | None = None
        """Set by the host: a sentence on why a name is missing (its plugin is blocked)."""

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
            raise origin.error(f"registered a malformed {self.kind}: {'; '.join(problems)}",
                               definition_site(cls))
        name: str = cls.name  # type: ignore[attr-defined]
        if name in self._classes:
            raise origin.error(
                f"registered {self.kind} {name!r}, which {self._origins[name]} already "
                f"registered (plugins register in this order: built-ins, then installed "
                f"distributions by name, then plugins given with -p); rename one of them",
                definition_site(cls))
        self._classes[name] = cls
        self._origins[name] = origin
        return cls

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``, or :meth:`unknown`'s error."""
        try:
            return self._classes[name]
        except KeyError:
            raise self.unknown(name) from None

    def unknown(self, name: str) -> UnknownNameError:
        """The error for a ``name`` nobody registered: close names, and a blocked plugin that
        may hold it."""
        note = self.why_unknown(name) if self.why_unknown is not None else ""
        return UnknownNameError(self.kind, name, self.suggest(name), self.names(), note=note)

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
