"""The Jinja2 environment: autoescaping, a layered loader, and the report's filters.

Templates are looked up in this order:

1. the user's template folder (``report.template_dir`` or ``--template-dir``);
2. the template folders of plugins that register report sections: a ``templates/`` folder next
   to the section's module, or the folder a section class names in ``template_dir``;
3. the built-in templates in ``xaudit/reports/templates``.

Every built-in template is also reachable as ``builtin:NAME``, so a user template can override
``section_model.html.j2`` and still ``{% extends "builtin:section_model.html.j2" %}``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
)

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


def build_environment(user_dir: Path | None, plugin_dirs: Iterable[Path]) -> Environment:
    """An autoescaping environment over the user, plugin and built-in template folders."""
    builtin = FileSystemLoader(str(BUILTIN_TEMPLATES))
    layers: list[BaseLoader] = []
    if user_dir is not None:
        layers.append(FileSystemLoader(str(user_dir)))
    layers += [FileSystemLoader(str(folder)) for folder in plugin_dirs]
    layers.append(builtin)
    loader = ChoiceLoader([PrefixLoader({"builtin": builtin}, delimiter=":"), *layers])
    env = Environment(loader=loader, autoescape=True, undefined=StrictUndefined,
                      extensions=["jinja2.ext.do"],
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(num=fmt_number, signed=fmt_signed, pct=fmt_percent, json=fmt_json,
                       short_hash=short_hash)
    return env


def fmt_number(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; ``n/a`` for None and NaN."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    return f"{number:.{digits}g}"


def fmt_signed(value: Any, digits: int = 3) -> str:
    """A number with an explicit sign."""
    if value is None:
        return "n/a"
    return f"{float(value):+.{digits}g}"


def fmt_percent(value: Any, digits: int = 0) -> str:
    """A fraction as a percentage."""
    if value is None:
        return "n/a"
    return f"{100 * float(value):.{digits}f}%"


def fmt_json(value: Any) -> str:
    """Compact, key-sorted JSON (parameters, details)."""
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def short_hash(value: Any, length: int = 16) -> str:
    """The first ``length`` characters of a hex digest."""
    return str(value or "")[:length] or "n/a"
