"""Plugin packages, installed for real (issue 18).

``xaudit new-plugin`` (the command, run in the temporary environment) writes a package that
installs, passes its own tests (every case of xaudit's kits through the pytest plugin, closed
forms, the entry point, a suite) and runs from a suite as an installed distribution; its wheel
ships the section's template. ``examples/plugin_template`` is
exactly its output. ``examples/external_plugin`` (shap's PartitionExplainer wrapped as an
explainer) installs and passes its tests, every kit case included.

The packages go into a temporary virtual environment that reuses this environment's packages
through a ``.pth`` file, so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from xaudit.host import AUTOLOAD_ENV, BLOCK_ENV
from xaudit.scaffold import new_plugin
from xaudit.testing import CHECK_CASES, EXPLAINER_CASES, SECTION_CASES

ROOT = Path(__file__).resolve().parent.parent
IGNORED = {"__pycache__", "build", "dist"}


def _files(folder: Path) -> dict[str, bytes]:
    """The files of a package folder, without caches and build outputs."""
    found = {}
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if path.is_file() and not IGNORED & set(parts) and not any(
                p.startswith(".") or p.endswith(".egg-info") for p in parts):
            found["/".join(parts)] = path.read_bytes()
    return found


def test_the_example_template_is_the_scaffold_output(tmp_path: Path) -> None:
    new_plugin("example", tmp_path / "example")
    written, committed = _files(tmp_path / "example"), _files(ROOT / "examples" /
                                                              "plugin_template")
    assert sorted(written) == sorted(committed)
    for name, data in written.items():
        assert committed[name] == data, (
            f"examples/plugin_template/{name} differs from `xaudit new-plugin example`: "
            "regenerate it (one template, not two)")


def test_new_plugin_refuses_a_bad_name_and_a_full_folder(tmp_path: Path,
                                                         xaudit_cli: Any) -> None:
    done = xaudit_cli("new-plugin", "My-Plugin", "--dir", tmp_path / "a")
    assert done.exit_code == 4
    assert "plugin name 'My-Plugin' must be lower case letters" in done.stderr
    first = xaudit_cli("new-plugin", "mine", "--dir", tmp_path / "b")
    assert first.exit_code == 0, first.stderr
    assert "next: pip install -e" in first.stdout
    again = xaudit_cli("new-plugin", "mine", "--dir", tmp_path / "b")
    assert again.exit_code == 4
    assert "exists and is not empty" in again.stderr


# --------------------------------------------------------------------------------------------
# Installed in a temporary environment


def _run(*command: object, cwd: Path | None = None, timeout: int = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in (AUTOLOAD_ENV, BLOCK_ENV,
                                                            "PYTHONPATH")}
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{command}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment that sees this one's packages (and so pip, setuptools and
    xaudit with its pytest plugin) through a ``.pth`` file; returns its python."""
    folder = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", folder)
    python = folder / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .strip())
    ours = sysconfig.get_paths()["purelib"]
    (site / "xaudit_dev_environment.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n")
    return python


def _install(python: Path, package: Path) -> None:
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "-e", package)


@pytest.mark.slow
def test_a_new_plugin_installs_passes_its_tests_and_runs_from_a_suite(
    venv: Path, tmp_path: Path,
) -> None:
    package = tmp_path / "xaudit-plugin-demo"
    written = _run(venv, "-m", "xaudit", "new-plugin", "demo", "--dir", package)
    assert f"next: pip install -e '{package}[test]'" in written, written
    wheels = tmp_path / "wheels"
    _run(venv, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", wheels, package)
    (wheel,) = wheels.glob("*.whl")
    assert "xaudit_plugin_demo/templates/demo_sparsity.html.j2" in zipfile.ZipFile(
        wheel).namelist()  # the section's template is package data
    _install(venv, package)
    tests = _run(venv, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-rs", cwd=package)
    assert "29 passed, 1 skipped" in tests, tests
    for test, kit in (("explainer", EXPLAINER_CASES), ("check", CHECK_CASES),
                      ("section", SECTION_CASES)):
        for case in kit:  # every kit case ran, through the pytest plugin's fixtures
            assert re.search(rf"test_{test}_conforms\[{case.name}\] (PASSED|SKIPPED)",
                             tests), f"{test} kit case {case.name} did not run:\n{tests}"
    listed = json.loads(_run(venv, "-m", "xaudit", "plugins", "--json"))
    row = next(r for r in listed if r["name"] == "demo")
    assert (row["distribution"], row["version"]) == ("xaudit-plugin-demo", "0.1.0")
    assert row["report_sections"] == ["demo.sparsity_overview"]
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "model.py").write_text("def make():\n    return lambda X: X @ [3.0, 1.0, 0.0]\n")
    _run(venv, "-c", "import numpy as np; np.savez('data.npz', "
         "X=np.random.default_rng(0).normal(size=(40, 3)))", cwd=suite)
    (suite / "suite.yaml").write_text(
        "name: demo\nmodel: {factory: 'model:make', output_names: [y]}\n"
        "data: {source: data.npz, explain: {n: 6}, background: {n: 20}}\n"
        "explainers:\n  - {id: fd, method: demo.gradient_free_sensitivity}\n"
        "checks:\n  - {check: demo.sparsity, explainer: fd, gate: {threshold: 0.2}}\n"
        "report: {formats: [json, html], out_dir: out}\n")
    verdict = _run(venv, "-m", "xaudit", "run", "suite.yaml", cwd=suite)
    assert "demo.sparsity@fd: PASS value 0.5 (gate: >= 0.2)" in verdict
    assert "Sparsity of the explanations" in (suite / "out" / "report.html").read_text()


@pytest.mark.slow
def test_the_external_plugin_installs_and_passes_every_kit_case(venv: Path) -> None:
    package = ROOT / "examples" / "external_plugin"
    _install(venv, package)
    listed = json.loads(_run(venv, "-m", "xaudit", "plugins", "--json"))
    row = next(r for r in listed if r["name"] == "shap_partition")
    assert row["distribution"] == "xaudit-shap-partition"
    assert row["explainers"] == ["shap_partition.owen"]
    tests = _run(venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", cwd=package)
    assert "12 passed" in tests, tests  # 9 kit cases, the closed forms, a suite
    assert "skipped" not in tests
    assert "failed" not in tests
