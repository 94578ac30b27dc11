"""xaudit's pytest plugin: fixtures for testing xaudit plugins.

pytest loads it through the ``pytest11`` entry point wherever xaudit is installed (disable it
with ``-p no:xaudit``). It adds fixtures only, nothing automatic, and imports xaudit only when a
fixture is used, so it costs other test suites nothing.

``xaudit_plugins``
    The plugins ``xaudit_host`` loads: the modules listed in the ini option ``xaudit_plugins``
    (``[tool.pytest.ini_options] xaudit_plugins = ["my_package.plugin"]``), or override this
    fixture in ``conftest.py`` to return modules or plugin objects.
``xaudit_host``
    A fresh :class:`~xaudit.host.Host` with the built-ins and ``xaudit_plugins`` loaded and no
    entry points (the developer's installed plugins cannot change the test).
``fake_distribution``
    A factory ``fake_distribution(name, version="0.1", entry_points={...})`` that makes
    ``importlib.metadata`` see an installed distribution with those ``xaudit`` entry points for
    the test's duration (in this process), to test entry-point discovery without installing.
``xaudit_cli``
    Runs the ``xaudit`` command in this process: ``xaudit_cli("run", "suite.yaml")`` returns a
    :class:`CliResult` with ``exit_code``, ``stdout`` and ``stderr``.
``xaudit_tabular``, ``xaudit_trees``, ``xaudit_torch``, ``xaudit_image``, ``xaudit_text``
    Sample models with rows, background and labels (:class:`~xaudit.testing.fixtures.Fixture`):
    a two-output linear function, a random forest, a torch MLP, a torch image network, a
    word-count function of raw strings. The torch ones skip when torch is not installed.
``xaudit_result``
    A sample :class:`~xaudit.results.AuditResult` (:func:`~xaudit.testing.sample_result`).
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from importlib.metadata import Distribution, DistributionFinder
from pathlib import Path
from typing import Any

import pytest

INI_PLUGINS = "xaudit_plugins"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ini option naming the plugins ``xaudit_host`` loads."""
    parser.addini(INI_PLUGINS, "plugin modules the xaudit_host fixture loads", type="linelist",
                  default=[])


@pytest.fixture
def xaudit_plugins(request: pytest.FixtureRequest) -> list[Any]:
    """The plugins ``xaudit_host`` loads (the ini option ``xaudit_plugins``)."""
    return list(request.config.getini(INI_PLUGINS))


@pytest.fixture
def xaudit_host(xaudit_plugins: list[Any]) -> Any:
    """A host with the built-ins and ``xaudit_plugins``, without entry points."""
    from xaudit import create_host

    return create_host(plugins=xaudit_plugins, autoload=False)


class FakeDistribution(Distribution):
    """An installed distribution as ``importlib.metadata`` sees one, made from its metadata."""

    def __init__(self, name: str, version: str, entry_points: Mapping[str, Mapping[str, str]]):
        self._files = {
            "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            "entry_points.txt": "".join(
                f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items())
                for group, points in entry_points.items()),
        }

    def read_text(self, filename: str) -> str | None:
        """The named metadata file, or ``None``."""
        return self._files.get(filename)

    def locate_file(self, path: str | Any) -> Path:
        """Distributions made here have no files."""
        return Path(str(path))


class _Finder(DistributionFinder):
    """Finds the fake distributions (put first on ``sys.meta_path``)."""

    def __init__(self) -> None:
        self.found: list[FakeDistribution] = []

    def find_spec(self, *args: Any) -> None:
        """Finds no modules."""
        return None

    def find_distributions(self, context: Any = None) -> Iterator[FakeDistribution]:
        """The fake distributions, or the one named in ``context``."""
        wanted = getattr(context, "name", None)
        for dist in self.found:
            if wanted is None or _normal(dist.metadata["Name"]) == _normal(wanted):
                yield dist


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture
def fake_distribution(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeDistribution]:
    """``fake_distribution(name, version="0.1", entry_points={"ep": "module"},
    group="xaudit", paths=())``: a distribution ``importlib.metadata`` finds for the test's
    duration, with those entry points; ``paths`` go first on ``sys.path`` (the plugin's
    source folder, if it is not importable yet)."""
    finder = _Finder()
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])

    def make(name: str, version: str = "0.1", entry_points: Mapping[str, str] | None = None,
             group: str = "xaudit", paths: Sequence[str | Path] = ()) -> FakeDistribution:
        for path in paths:
            monkeypatch.syspath_prepend(str(path))
        dist = FakeDistribution(name, version, {group: dict(entry_points or {})})
        finder.found.append(dist)
        return dist

    return make


@dataclass(frozen=True)
class CliResult:
    """What one ``xaudit`` command did."""

    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def xaudit_cli() -> Callable[..., CliResult]:
    """``xaudit_cli(*args)``: run ``xaudit`` with ``args`` in this process (fake
    distributions and monkeypatched variables apply); returns a :class:`CliResult`."""
    from xaudit.cli import main

    def run(*args: str | Path) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main([str(arg) for arg in args])
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


def _kit_fixture(kind: str, needs_torch: bool = False) -> Any:
    if needs_torch:
        pytest.importorskip("torch")
    from xaudit.testing.fixtures import FIXTURE_KINDS

    return next(k for k in FIXTURE_KINDS if k.name == kind).build()


@pytest.fixture
def xaudit_tabular() -> Any:
    """A two-output linear function of four features, with rows, background and labels."""
    return _kit_fixture("linear")


@pytest.fixture
def xaudit_trees() -> Any:
    """A three-class scikit-learn random forest on four features (``tree_ensemble``)."""
    return _kit_fixture("forest")


@pytest.fixture
def xaudit_torch() -> Any:
    """A torch MLP, four features to three outputs (``gradients``, ``layers``)."""
    return _kit_fixture("mlp", needs_torch=True)


@pytest.fixture
def xaudit_image() -> Any:
    """A torch convolution + attention network on ``(3, 8, 8)`` images."""
    return _kit_fixture("image", needs_torch=True)


@pytest.fixture
def xaudit_text() -> Any:
    """A word-count function of raw strings (outputs: 'good' and 'bad' counts)."""
    return _kit_fixture("text")


@pytest.fixture
def xaudit_result() -> Any:
    """A sample audit result: two explanations, their completeness checks, a crash."""
    from xaudit.testing import sample_result

    return sample_result()
