"""The Jinja2 environment: autoescaping, a layered loader, and the report's filters.

Templates are looked up in this order:

1. the user's template folder (``report.template_dir`` or ``--template-dir``);
2. the template folders of plugins that register report sections: a ``templates/`` folder next
   to the section's module, or the folder a section class names in ``template_dir``;
3. the built-in templates in ``xaudit/reports/templates``.

Every built-in template is also reachable as ``builtin:NAME``, so a user template can override
``section_model.html.j2`` and still ``{% extends "builtin:section_model.html.j2" %}``.

Templates are not trusted to run code: a template folder can arrive with a suite in a pull
request. Every template (built-in, plugin and user) renders in Jinja2's sandbox
(:class:`jinja2.sandbox.SandboxedEnvironment`: no attribute starting with ``_``, so no
``cycler.__init__.__globals__``), narrowed further by :class:`ReportSandbox`: the only calls
allowed are macros, Jinja2's own helpers and the methods of plain data (text, numbers, lists,
mappings), so a template cannot call a method of a NumPy array or a result object (``tofile``,
``save``). A template file must lie inside its folder: a symbolic link that leads out of it is
not followed. Text printed by ``{{ ... }}`` is escaped for HTML and has its control and
bidirectional characters shown as escapes (:func:`shown`).
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    TemplateNotFound,
)
from jinja2.loaders import split_template_path
from jinja2.runtime import BlockReference, LoopContext, Macro
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Cycler, Joiner
from markupsafe import Markup

from ..safe_text import printable
from .formatting import fmt_json, fmt_number, fmt_percent, fmt_signed, short_hash

BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def plugin_template_dirs(section_classes: Iterable[type]) -> list[Path]:
    """Template folders that the modules of ``section_classes`` bring, in order, no repeats."""
    found: list[Path] = []
    for cls in section_classes:
        declared = getattr(cls, "template_dir", None)
        candidates = [Path(declared)] if declared else []
        with contextlib.suppress(TypeError, OSError):
            candidates.append(Path(inspect.getfile(cls)).parent / "templates")
        for folder in candidates:
            folder = folder.resolve()
            if folder.is_dir() and folder != BUILTIN_TEMPLATES.resolve() and folder not in found:
                found.append(folder)
    return found


PLAIN_DATA = (str, int, float, list, tuple, dict, set, frozenset)
"""Types whose methods a template may call (``d.get(k)``, ``names.append(x)``, ``s.replace``)."""
_JINJA_HELPERS = (Macro, BlockReference, LoopContext, Cycler, Joiner)


class ReportSandbox(SandboxedEnvironment):
    """Jinja2's sandbox, allowing calls only to macros, Jinja2's helpers and globals
    (``super()``, ``loop.cycle``, ``range``), and the methods of :data:`PLAIN_DATA`."""

    def is_safe_callable(self, obj: Any) -> bool:
        """Whether a template may call ``obj``."""
        if isinstance(obj, _JINJA_HELPERS) or any(obj is g for g in self.globals.values()):
            return True
        if getattr(obj, "__code__", None) is _SANDBOXED_FORMAT:
            return True  # text.format(...) through the sandbox's formatter (no ``_`` fields)
        owner = getattr(obj, "__self__", None)
        return isinstance(owner, PLAIN_DATA + _JINJA_HELPERS) and super().is_safe_callable(obj)


_SANDBOXED_FORMAT = getattr(SandboxedEnvironment().wrap_str_format("".format), "__code__", None)
"""The code of the wrapper the sandbox puts around ``str.format``, which looks up fields through
the sandbox's own attribute rules."""


class ConfinedLoader(FileSystemLoader):
    """A folder's templates, refusing any file that is not a regular file inside the folder
    (a symbolic link out of it, a device, a pipe) before reading it."""

    def get_source(self, environment: Environment,
                   template: str) -> tuple[str, str, Callable[[], bool]]:
        """The template's source, as :class:`~jinja2.FileSystemLoader` reads it."""
        pieces = split_template_path(template)
        for folder in self.searchpath:
            candidate = Path(folder, *pieces)
            if os.path.lexists(candidate):
                resolved = candidate.resolve()
                if not (resolved.is_file() and resolved.is_relative_to(Path(folder).resolve())):
                    raise TemplateNotFound(f"{template} (not a file inside {folder})")
        return super().get_source(environment, template)


def build_environment(user_dir: Path | None, plugin_dirs: Iterable[Path]) -> Environment:
    """An autoescaping, sandboxed environment over the user, plugin and built-in folders."""
    builtin = ConfinedLoader(str(BUILTIN_TEMPLATES))
    layers: list[BaseLoader] = []
    if user_dir is not None:
        layers.append(ConfinedLoader(str(user_dir)))
    layers += [ConfinedLoader(str(folder)) for folder in plugin_dirs]
    layers.append(builtin)
    loader = ChoiceLoader([PrefixLoader({"builtin": builtin}, delimiter=":"), *layers])
    env = ReportSandbox(loader=loader, autoescape=True, undefined=StrictUndefined,
                        extensions=["jinja2.ext.do"], finalize=shown,
                        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(num=fmt_number, signed=fmt_signed, pct=fmt_percent, json=fmt_json,
                       short_hash=short_hash)
    return env


def shown(value: Any) -> Any:
    """Every ``{{ expression }}``'s value before it is escaped: text with its control and
    bidirectional characters as visible escapes (:func:`~xaudit.safe_text.printable`);
    markup a template or section already rendered, and non-text values, as they are."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value
