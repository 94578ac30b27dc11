"""Plugins import shared code from ``plugins/_support``, never from each other (static, ``ast``).

Every import in the source (lazy ones inside functions too) is resolved to the ``xaudit``
module it names, with the folder mapping of ``setup.py`` (``core/`` is ``xaudit``, ``plugins/``
``xaudit.plugins``, ...). Rules:

- no module registered as a built-in plugin (``BUILTIN_PLUGINS``) imports another one;
- a module under ``plugins/`` imports from ``xaudit.plugins`` only ``_support`` modules and
  non-plugin modules of its own family (``plugins/<family>/``);
- a ``_support`` module imports nothing from ``xaudit.plugins`` outside ``_support``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from xaudit.host import BUILTIN_PLUGINS

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"xaudit": "core", "xaudit.adapters": "adapters", "xaudit.plugins": "plugins",
           "xaudit.reports": "reports"}
SUPPORT = "xaudit.plugins._support"


def source_modules() -> dict[str, Path]:
    """Every ``xaudit`` module of the source tree, by import name."""
    found: dict[str, Path] = {}
    for package, folder in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if package == "xaudit" and parts and parts[0] in ("adapters", "plugins", "reports"):
                continue
            found[".".join([package, *parts])] = path
    return found


MODULES = source_modules()


def imported(name: str) -> set[str]:
    """The ``xaudit`` modules ``name`` imports (the most specific module each import names)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                       for alias in node.names]
        else:
            continue
        out.update(t for t in targets if t == "xaudit" or t.startswith("xaudit."))
    return out


def family(name: str) -> str:
    """``xaudit.plugins.<family>`` of a plugins module."""
    return ".".join(name.split(".")[:3])


def test_the_tree_is_read() -> None:
    assert set(BUILTIN_PLUGINS) <= set(MODULES)
    assert "xaudit.plugins.gradients.smoothgrad.integrated_gradients" not in MODULES
    # the resolver sees a plugin-to-plugin import when there is one
    assert "xaudit.plugins._support.paths" in imported("xaudit.plugins.gradients.smoothgrad")
    assert "xaudit.plugins.shapley.tree_interventional" in imported("xaudit.plugins.shapley.tree")


@pytest.mark.parametrize("name", BUILTIN_PLUGINS)
def test_no_builtin_plugin_imports_another(name: str) -> None:
    others = imported(name) & (set(BUILTIN_PLUGINS) - {name})
    assert not others, f"{name} imports the plugin module(s) {sorted(others)}; move the shared " \
                       "code into plugins/_support (or a family module that registers nothing)"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("xaudit.plugins.")))
def test_plugins_import_helpers_from_support_or_their_own_family(name: str) -> None:
    own = family(name)
    for target in sorted(imported(name)):
        if not target.startswith("xaudit.plugins."):
            continue
        if name.startswith(SUPPORT + "."):
            assert target.startswith(SUPPORT + "."), f"{name} (a helper) imports {target}"
            continue
        allowed = target.startswith(SUPPORT + ".") or (
            family(target) == own and target not in BUILTIN_PLUGINS)
        assert allowed, (f"{name} imports {target}: plugins import from plugins/_support or "
                         f"from non-plugin modules of their own family ({own})")
