"""``xaudit new-plugin NAME``: write a plugin package to start from.

The package (:func:`new_plugin`) holds an explainer, a check and a report section with its
template, registered through the ``xaudit`` entry point; a ``pyproject.toml`` that ships the
template as package data; tests that run xaudit's conformance kits through its pytest plugin,
check the numbers against closed forms, discover the entry point and run a suite; and a README.
The files are rendered from ``template/`` with :class:`string.Template` (``$name``,
``$package``, ``$dist``); ``__package__`` and ``__name__`` in a path become the import package
and the plugin name.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from ..errors import InputError

TEMPLATE = Path(__file__).parent / "template"
SUFFIX = ".tmpl"
PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def names(name: str) -> dict[str, str]:
    """The plugin's entry-point name, import package and distribution name."""
    if not PLUGIN_NAME.match(name):
        raise InputError(f"plugin name {name!r} must be lower case letters, digits and "
                         "underscores, starting with a letter (it prefixes every registered "
                         "name, as in 'mine.method')")
    return {"name": name, "package": f"xaudit_plugin_{name}",
            "dist": f"xaudit-plugin-{name.replace('_', '-')}"}


def new_plugin(name: str, folder: Path | None = None) -> list[Path]:
    """Write the package of plugin ``name`` into ``folder`` (default: ``./xaudit-plugin-NAME``);
    returns the files written. A folder that exists and is not empty is refused."""
    values = names(name)
    folder = Path(folder or values["dist"])
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder} exists and is not empty; give a new folder with --dir")
    written = []
    for source in sorted(TEMPLATE.rglob(f"*{SUFFIX}")):
        relative = source.relative_to(TEMPLATE).as_posix().removesuffix(SUFFIX)
        relative = relative.replace("__package__", values["package"]).replace(
            "__name__", name)
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(source.read_text()).substitute(values))
        written.append(target)
    return written
