"""The docs say where every built-in lives, and what they say is true.

A newcomer finds a method's file from its registered name in one step: the table in
docs/explainers/README.md (checks: docs/checks.md) names the file and class of every registered
built-in, and docs/plugins.md names every built-in plugin module (the names ``--block-plugin``
takes). These tests read those tables and compare them with the live registry.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import xaudit
from xaudit.host import BUILTIN_PLUGINS, RENAMED_PLUGINS, Host

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| \[`(?P<file>[^`]+)`\]\((?P<link>[^)]+)\) \| "
                 r"`(?P<cls>[^`]+)` \|", re.M)


@pytest.fixture(scope="module")
def host() -> Host:
    return xaudit.create_host(autoload=False)


def _table(page: Path) -> dict[str, tuple[str, str, str]]:
    rows = {m["name"]: (m["file"], m["link"], m["cls"]) for m in ROW.finditer(page.read_text())}
    assert rows, f"no location table in {page}"
    return rows


def _where(cls: type) -> str:
    return Path(inspect.getfile(cls)).resolve().relative_to(ROOT).as_posix()


@pytest.mark.parametrize(("page", "registry"), [
    (DOCS / "explainers" / "README.md", "explainers"),
    (DOCS / "checks.md", "checks"),
])
def test_every_builtin_is_located_in_the_docs(host: Host, page: Path, registry: str) -> None:
    table = _table(page)
    registered = {name: cls for name, cls in getattr(host, registry).items()
                  if host_origin(host, registry, name) == "xaudit"}
    assert sorted(table) == sorted(registered), f"{page.name} lists other names than the registry"
    for name, cls in registered.items():
        file, link, class_name = table[name]
        assert (file, class_name) == (_where(cls), cls.__name__), (
            f"{page.name} places {name!r} in {file} ({class_name}); it is in {_where(cls)} "
            f"({cls.__name__})")
        assert (page.parent / link).resolve() == ROOT / file, f"{page.name}: broken link {link}"


def host_origin(host: Host, registry: str, name: str) -> str:
    return getattr(host, registry).origin(name).distribution


def test_every_builtin_plugin_name_is_documented() -> None:
    text = (DOCS / "plugins.md").read_text()
    documented = set(re.findall(r"^\| `(xaudit\.[a-z_.]+)` \|", text, re.M))
    assert documented == set(BUILTIN_PLUGINS)


def test_old_plugin_names_still_block_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = "xaudit.plugins.shap_tree", "xaudit.plugins.shapley.tree"
    assert RENAMED_PLUGINS[old] == new
    with pytest.warns(FutureWarning, match=re.escape(new)):
        host = xaudit.create_host(block=[old], autoload=False)
    assert new not in host.plugins
    assert "shap.tree" not in host.explainers
    assert set(RENAMED_PLUGINS.values()) <= set(BUILTIN_PLUGINS)
