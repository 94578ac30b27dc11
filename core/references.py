"""Importing the ``module:function`` references that suites and adapter options name.

A suite's ``model.factory`` and the torch adapter's ``factory`` option name code as
``module:attribute`` (``models:train``, ``nets:Builder.build``). :func:`import_reference` is the
one place that imports them, with one search order:

1. the folder ``near`` (the suite's folder for ``model.factory``, the state-dict file's folder
   for the torch adapter): ``near/module.py`` or ``near/module/__init__.py``. A module of that
   name imported earlier from elsewhere (another suite's ``models.py``) is imported again from
   ``near``, so two suites in two folders each get their own;
2. then ``sys.path``, as a plain ``import`` would (installed packages, the working directory).

``near`` is on ``sys.path`` only while the module is imported. A module that cannot be
imported (not found, a syntax error, named with its file and line, or an exception raised by its
own code) raises :class:`~xaudit.errors.ModelLoadError`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from .errors import ModelLoadError


def import_reference(reference: str, near: Path | None = None, what: str = "factory") -> Any:
    """The object ``reference`` (``module:attribute``, the attribute possibly dotted) names,
    searched for in ``near`` first and then on ``sys.path``; ``what`` names the reference in
    the :class:`~xaudit.errors.ModelLoadError` raised when it is malformed or not found."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ModelLoadError(f"{what} must look like 'module:function', got {reference!r}")
    try:
        found: Any = _import(module_name, near)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"{what} {reference!r} cannot be imported: {exc}") from exc
    except SyntaxError as exc:
        raise ModelLoadError(f"{what} {reference!r} cannot be imported: {exc.filename}, line "
                             f"{exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # the module's own code raised while it was imported
        raise ModelLoadError(f"{what} {reference!r}: importing module {module_name!r} raised "
                             f"{type(exc).__name__}: {exc}") from exc
    return found


def _import(module_name: str, near: Path | None) -> Any:
    if near is None:
        return importlib.import_module(module_name)
    folder = str(Path(near).resolve())
    relative = Path(*module_name.split("."))
    local = next((p for p in (Path(folder) / relative.with_suffix(".py"),
                              Path(folder) / relative / "__init__.py") if p.is_file()), None)
    cached = sys.modules.get(module_name)
    cached_file = getattr(cached, "__file__", None)
    if local is not None and cached is not None and (
            cached_file is None or Path(cached_file).resolve() != local.resolve()):
        del sys.modules[module_name]
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path.remove(folder)
