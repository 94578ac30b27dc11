"""Plugin errors say where and what to do (issue 18).

Every refusal is a PluginError (the CLI exits 4) that names the plugin, its distribution and
version, the file and line at fault, and the option that blocks the plugin; ``-p`` import
failures included. Hook-like functions pluggy would skip are refused with the closest hook
name; which of two plugins registering one name is refused does not depend on ``sys.path``
order; and an unknown method whose plugin is blocked says so. Entry points are faked in this
process with the ``fake_distribution`` fixture of xaudit's pytest plugin.
"""

from __future__ import annotations

import itertools
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import xaudit
from xaudit import PluginError
from xaudit.host import AUTOLOAD_ENV, BLOCK_ENV, create_host

_ids = itertools.count()
HINT = "to run without it: --block-plugin {name} (or XAUDIT_BLOCK_PLUGINS={name})"


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv(BLOCK_ENV, raising=False)


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Path]]:
    """Writes a one-file module importable for the test; returns its path."""
    folder = tmp_path / "modules"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    names: list[str] = []

    def write(body: str, name: str | None = None) -> Path:
        name = name or f"xaudit_test_plugin_{next(_ids)}"
        path = folder / f"{name}.py"
        path.write_text(textwrap.dedent(body))
        names.append(name)
        return path

    yield write
    for name in names:
        sys.modules.pop(name, None)


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# --------------------------------------------------------------------------------------------
# -p MODULE: import failures are PluginErrors (exit 4) at the module's file and line


def test_p_with_a_missing_module_exits_4(xaudit_cli: Any) -> None:
    done = xaudit_cli("-p", "xaudit_no_such_plugin_module", "plugins")
    assert done.exit_code == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert ("plugin 'xaudit_no_such_plugin_module' (distribution local) failed to import "
            "'xaudit_no_such_plugin_module': No module named 'xaudit_no_such_plugin_module' "
            "(looked in the current folder and sys.path") in done.stderr
    assert HINT.format(name="xaudit_no_such_plugin_module") in done.stderr


@pytest.mark.parametrize(("body", "marker", "message"), [
    ("import os\n\nraise RuntimeError('no licence key')\n", "raise RuntimeError",
     "failed to import '{name}': no licence key"),
    ("import numpy\nimport xaudit_test_missing_dependency\n", "import xaudit_test_missing",
     "failed to import '{name}': No module named 'xaudit_test_missing_dependency'"),
    ("def broken(:\n    pass\n", "def broken(", "failed to import '{name}': invalid syntax"),
], ids=["raises", "missing-dependency", "syntax-error"])
def test_p_with_a_failing_import_names_its_line(
    module: Callable[[str], Path], xaudit_cli: Any, body: str, marker: str, message: str,
) -> None:
    path = module(body)
    name = path.stem
    done = xaudit_cli("-p", name, "plugins")
    assert done.exit_code == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert f"plugin '{name}' (distribution local) " in done.stderr
    assert message.format(name=name) in done.stderr
    assert f"(at {path}:{_line_of(path, marker)})" in done.stderr
    assert HINT.format(name=name) in done.stderr


def test_p_of_an_installed_plugin_module_is_loaded_once(
    module: Callable[[str], Path], fake_distribution: Any,
) -> None:
    path = module("""\
        from xaudit import Check, CheckOutcome, hookimpl

        class ProbeCheck(Check):
            name = "probe.check"
            direction = "higher"

            def run(self, model, explanation, data, rng):
                return CheckOutcome(0.0)

        @hookimpl
        def xaudit_register_checks(registry):
            registry.add(ProbeCheck)
        """)
    fake_distribution("xaudit-plugin-probe", "1.2", {"probe": path.stem})
    host = create_host(plugins=[path.stem])
    assert host.checks.origin("probe.check").distribution == "xaudit-plugin-probe"


# --------------------------------------------------------------------------------------------
# Hooks pluggy would skip, or reject without a hint


@pytest.mark.parametrize(("body", "expected"), [
    ("def xaudit_register_explainers(registry):\n    pass\n",
     "defines xaudit_register_explainers without @hookimpl, so xaudit would never call it; "
     "decorate it with @xaudit.hookimpl"),
    ("def xaudit_register_check(registry):\n    pass\n",
     "defines xaudit_register_check (did you mean the hook 'xaudit_register_checks'?) without "
     "@hookimpl"),
    ("from xaudit import hookimpl\n\n@hookimpl\ndef xaudit_register_explainer(registry):\n"
     "    pass\n",
     "implements unknown hook 'xaudit_register_explainer'; did you mean "
     "'xaudit_register_explainers'?"),
], ids=["unmarked", "unmarked-misspelled", "misspelled"])
def test_hook_like_functions_are_refused_with_the_closest_hook(
    module: Callable[[str], Path], body: str, expected: str,
) -> None:
    path = module(body)
    with pytest.raises(PluginError) as refused:
        create_host(plugins=[path.stem], autoload=False)
    message = str(refused.value)
    assert expected in message
    assert f"(at {path}:" in message
    assert HINT.format(name=path.stem) in message


def test_helpers_named_like_the_project_are_left_alone(module: Callable[[str], Path]) -> None:
    path = module("def xaudit_version_string():\n    return '1'\n")
    assert path.stem in create_host(plugins=[path.stem], autoload=False).plugins


def test_a_plugin_object_is_named_by_its_class() -> None:
    class Unmarked:
        def xaudit_register_checks(self, registry: Any) -> None:
            pass

    with pytest.raises(PluginError) as refused:
        create_host(plugins=[Unmarked()], autoload=False)
    message = str(refused.value)
    assert f"plugin '{__name__}.{Unmarked.__qualname__}' (distribution local)" in message
    assert " object at 0x" not in message


# --------------------------------------------------------------------------------------------
# Every entry-point plugin error: plugin, distribution, version, file:line, --block-plugin


BROKEN = {
    "malformed class": ("""\
        from xaudit import Explainer, hookimpl

        class Sensitivity(Explainer):
            name = "Bad Name"

            def explain(self, model, X, *, background, targets, rng):
                return None

        @hookimpl
        def xaudit_register_explainers(registry):
            registry.add(Sensitivity)
        """, "class Sensitivity", "registered a malformed explainer"),
    "hook raises": ("""\
        from xaudit import hookimpl

        @hookimpl
        def xaudit_register_checks(registry):
            settings = {}
            return settings["threshold"]
        """, 'return settings["threshold"]', "failed in xaudit_register_checks: KeyError"),
    "import raises": ("""\
        value = 1 / 0
        """, "value = 1 / 0", "failed to import"),
    "wrong argument": ("""\
        from xaudit import hookimpl

        @hookimpl
        def xaudit_register_checks(reg):
            pass
        """, "@hookimpl", "cannot be registered"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_entry_point_errors_say_where_and_what_to_do(
    case: str, module: Callable[[str], Path], fake_distribution: Any, xaudit_cli: Any,
) -> None:
    body, marker, what = BROKEN[case]
    path = module(body)
    fake_distribution("xaudit-plugin-broken", "0.3", {"broken": path.stem})
    done = xaudit_cli("plugins")
    assert done.exit_code == 4
    assert f"plugin 'broken' (distribution xaudit-plugin-broken 0.3) {what}" in done.stderr
    assert f"(at {path}:{_line_of(path, marker)})" in done.stderr
    assert HINT.format(name="broken") in done.stderr
    assert xaudit_cli("--block-plugin", "broken", "plugins").exit_code == 0


# --------------------------------------------------------------------------------------------
# Name collisions: the later distribution by name is refused, whatever sys.path says


@pytest.mark.parametrize("order", ["a-first", "b-first"])
def test_collisions_blame_the_later_distribution_by_name(
    order: str, module: Callable[[str], Path], fake_distribution: Any,
) -> None:
    body = """\
        from xaudit import Check, CheckOutcome, hookimpl

        class ProbeCheck(Check):
            name = "probe.check"
            direction = "higher"

            def run(self, model, explanation, data, rng):
                return CheckOutcome(0.0)

        @hookimpl
        def xaudit_register_checks(registry):
            registry.add(ProbeCheck)
        """
    first, second = module(body), module(body)
    dists = [("xaudit-plugin-alpha", "alpha", first), ("xaudit-plugin-beta", "beta", second)]
    for dist, name, path in dists if order == "a-first" else dists[::-1]:
        fake_distribution(dist, "1.0", {name: path.stem})
    with pytest.raises(PluginError) as refused:
        create_host()
    assert str(refused.value).startswith(
        "plugin 'beta' (distribution xaudit-plugin-beta 1.0) registered check 'probe.check', "
        "which plugin 'alpha' (distribution xaudit-plugin-alpha 1.0) already registered")
    assert HINT.format(name="beta") in str(refused.value)


def test_two_distributions_with_one_entry_point_name_are_refused(
    module: Callable[[str], Path], fake_distribution: Any,
) -> None:
    first, second = module("x = 1\n"), module("x = 2\n")
    fake_distribution("xaudit-plugin-zeta", "1.0", {"shared": second.stem})
    fake_distribution("xaudit-plugin-eta", "2.0", {"shared": first.stem})
    with pytest.raises(PluginError, match=re.escape(
        "plugin 'shared' (distribution xaudit-plugin-zeta 1.0) has the entry-point name of "
        "plugin 'shared' (distribution xaudit-plugin-eta 2.0)")):
        create_host()


# --------------------------------------------------------------------------------------------
# An unknown method whose plugin is blocked says so


SUITE = """\
name: blocked
model: {factory: "model:make"}
data: {source: sklearn:diabetes}
explainers:
  - {id: main, method: %s}
"""


def _suite(tmp_path: Path, method: str) -> Path:
    (tmp_path / "model.py").write_text("def make():\n    return lambda X: X.sum(axis=1)\n")
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE % method)
    return path


def test_validate_says_a_builtin_method_is_blocked(tmp_path: Path, xaudit_cli: Any) -> None:
    suite = _suite(tmp_path, "ablation")
    done = xaudit_cli("--no-autoload", "--block-plugin", "xaudit.plugins.perturbation.ablation",
                      "validate", suite)
    assert done.exit_code == 4
    assert ("explainers[0].method: unknown explainer 'ablation'; ") in done.stderr
    assert ("It is registered by plugin 'xaudit.plugins.perturbation.ablation', which is "
            "blocked in this run (--block-plugin or XAUDIT_BLOCK_PLUGINS); unblock it to use "
            "'ablation'.") in done.stderr


def test_validate_says_an_installed_plugin_is_blocked(
    tmp_path: Path, xaudit_cli: Any, fake_distribution: Any, module: Callable[[str], Path],
) -> None:
    path = module("x = 1\n")
    fake_distribution("xaudit-plugin-example", "0.1", {"example": path.stem})
    done = xaudit_cli("--block-plugin", "example", "validate",
                      _suite(tmp_path, "example.gradient_free_sensitivity"))
    assert done.exit_code == 4
    assert ("It is registered by plugin 'example' (distribution xaudit-plugin-example 0.1), "
            "which is blocked in this run") in done.stderr


def test_unknown_names_list_the_blocked_plugins_otherwise() -> None:
    host = create_host(block=["somebody"], autoload=False)
    with pytest.raises(xaudit.UnknownNameError, match=re.escape(
            "Plugins blocked in this run (--block-plugin or XAUDIT_BLOCK_PLUGINS): somebody; "
            "if one of them registers 'mystery.method', unblock it.")):
        host.explainer("mystery.method", {})
    assert "blocked" not in str(create_host(autoload=False).explainers.unknown("mystery"))
