"""The hooks a plugin may implement.

A plugin is a module (or object) with functions decorated by :data:`hookimpl` and named after
these specifications. Third-party packages expose it through the ``xaudit`` entry-point group::

    [project.entry-points.xaudit]
    my_plugin = "my_package.xaudit_plugin"

Every ``xaudit_register_*`` hook receives a :class:`~xaudit.registry.Registry` whose ``add(cls)``
validates the class and records which plugin added it. See ``docs/plugins.md`` for a walk-through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .model import Model
    from .plugin import Adapter, Check, Explainer, ReportSection
    from .registry import Registry

PROJECT = "xaudit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def xaudit_register_adapters(registry: Registry[Adapter]) -> None:
    """Register :class:`~xaudit.plugin.Adapter` subclasses with ``registry.add(cls)``.

    Adapters turn model objects or files into a :class:`~xaudit.model.Model`; when no adapter is
    named, each registered adapter's ``claims(obj)`` is asked, highest ``priority`` first.
    """


@hookspec
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register :class:`~xaudit.plugin.Explainer` subclasses with ``registry.add(cls)``."""


@hookspec
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register :class:`~xaudit.plugin.Check` subclasses with ``registry.add(cls)``."""


@hookspec
def xaudit_register_report_sections(registry: Registry[ReportSection]) -> None:
    """Register :class:`~xaudit.plugin.ReportSection` subclasses with ``registry.add(cls)``."""


@hookspec(firstresult=True)
def xaudit_adapt_model(obj: object, options: dict[str, Any]) -> Model | None:
    """Claim a raw model object or a model spec before the registered adapters are asked.

    Return a :class:`~xaudit.model.Model` to claim ``obj``, or ``None`` to pass. The first
    non-``None`` result wins (``tryfirst=True`` on the implementation puts it ahead of others).
    ``options`` are the user's adapter options, unvalidated.
    """
