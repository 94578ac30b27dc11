"""Where a plugin went wrong and what to do about it: the one shape of every plugin error.

Every :class:`~xaudit.errors.PluginError` the host raises reads::

    plugin 'NAME' (distribution DIST VERSION) WHAT (at FILE:LINE); to run without it:
    --block-plugin NAME (or XAUDIT_BLOCK_PLUGINS=NAME)

The site is the plugin's own code: the definition of a refused class or hook function, the
line that raised while importing or registering (a ``SyntaxError``'s own line), found by
walking the traceback past the host's machinery (pluggy, importlib, xaudit's loader).
"""

from __future__ import annotations

import inspect
import os
import traceback
from pathlib import Path
from typing import Any

import pluggy

from .errors import PluginError

BLOCK_OPTION = "--block-plugin"
BLOCK_ENV = "XAUDIT_BLOCK_PLUGINS"
_MACHINERY = (
    str(Path(pluggy.__file__).resolve().parent),
    *(str(Path(__file__).resolve().with_name(name)) for name in
      ("blame.py", "loader.py", "host.py", "registry.py")),
)


def definition_site(obj: object) -> str | None:
    """``file:line`` where the class or function ``obj`` is defined, or ``None``."""
    try:
        target: Any = inspect.unwrap(obj) if callable(obj) else obj
        file = inspect.getsourcefile(target)
        _, line = inspect.getsourcelines(target)
    except (TypeError, OSError):
        return None
    return f"{file}:{max(line, 1)}" if file else None


def failure_site(exc: BaseException, home: str | None = None) -> str | None:
    """``file:line`` of the code that raised ``exc``.

    A ``SyntaxError`` names its own line. Otherwise the innermost traceback frame under
    ``home`` (the plugin's folder) when there is one, else the innermost frame outside the
    host's machinery.
    """
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{exc.filename}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<frozen") and
              not f.filename.startswith(_MACHINERY)]
    if home is not None:
        frames = [f for f in frames if _under(f.filename, home)] or frames
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def _under(filename: str, folder: str) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(filename), folder]) == folder
    except ValueError:
        return False


def home_of(obj: object) -> str | None:
    """Where the plugin ``obj`` comes from, to find its frames: its package's folder, or its
    module's file."""
    return home_of_file(getattr(inspect.getmodule(obj), "__file__", None))


def home_of_file(file: str | None) -> str | None:
    """A package's folder for its ``__init__.py``, else the module file itself."""
    if not file:
        return None
    path = Path(file).resolve()
    return str(path.parent if path.name == "__init__.py" else path)


def block_hint(name: str) -> str:
    """How to run without the plugin ``name``."""
    return f"to run without it: {BLOCK_OPTION} {name} (or {BLOCK_ENV}={name})"


def plugin_error(plugin: object, name: str, what: str, site: str | None = None) -> PluginError:
    """The error blaming ``plugin`` (its description) for ``what``, at ``site``."""
    where = f" (at {site})" if site else ""
    return PluginError(f"{plugin} {what}{where}; {block_hint(name)}")
