"""The wheel holds the whole package, works without the source tree, and on a bare install
refuses every feature that needs an extra with the extra to install (exit 4).

setup.py computes the package list from the folders, so a new family subpackage cannot silently
drop out of the wheel; this test builds the wheel (offline, with the environment's setuptools),
checks that every module, report resource and scaffold template is in it, and imports every
built-in plugin from the unpacked wheel in a fresh interpreter, never from the editable source.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"core": "xaudit", "adapters": "xaudit/adapters", "plugins": "xaudit/plugins",
           "reports": "xaudit/reports"}
"""Source folder -> where its files lie in the wheel (as setup.py maps them)."""
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "LICENSE", *FOLDERS)
"""What the build reads; copied to a scratch folder so that no stale ``build/`` folder of the
working tree leaks into the wheel and no build output is left in the tree."""
RESOURCES = ("reports/templates", "reports/static", "core/scaffold/template")


def expected_files() -> set[str]:
    """The wheel paths of every source module, report resource and ``py.typed``."""
    found = {"xaudit/py.typed"}
    for folder, target in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                found.add(f"{target}/{path.relative_to(ROOT / folder).as_posix()}")
    for resources in RESOURCES:
        folder = resources.split("/")[0]
        for path in (ROOT / resources).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(f"{FOLDERS[folder]}/{path.relative_to(ROOT / folder).as_posix()}")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the source tree, without network or build isolation."""
    scratch = tmp_path_factory.mktemp("wheel")
    source, out = scratch / "source", scratch / "dist"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w",
         str(out), str(source)], capture_output=True, text=True, env=env, check=False,
        timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    (scratch / "build.log").write_text(done.stdout + done.stderr)
    (built,) = out.glob("xaudit-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_report_resource(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = sorted(expected_files() - names)
    assert not missing, f"{wheel.name} lacks {len(missing)} file(s): {', '.join(missing)}"


@pytest.mark.slow
def test_every_builtin_plugin_imports_from_the_unpacked_wheel(wheel: Path,
                                                             tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    code = (
        "import importlib, json, sys\n"
        "import xaudit\n"
        "from xaudit.host import BUILTIN_PLUGINS\n"
        "for name in BUILTIN_PLUGINS:\n"
        "    importlib.import_module(name)\n"
        "host = xaudit.create_host(autoload=False)\n"
        "files = {name: getattr(module, '__file__', None) for name, module in sys.modules.items()\n"
        "         if name == 'xaudit' or name.startswith('xaudit.')}\n"
        "print(json.dumps({'plugins': list(BUILTIN_PLUGINS), 'loaded': sorted(host.plugins),\n"
        "                  'files': files}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(report["plugins"]) == report["loaded"]
    assert Path(report["files"]["xaudit"]).resolve() == (site / "xaudit" / "__init__.py").resolve()
    elsewhere = {name: file for name, file in report["files"].items()
                 if file is not None and not Path(file).resolve().is_relative_to(site.resolve())}
    assert not elsewhere, f"modules imported from outside the unpacked wheel: {elsewhere}"


@pytest.mark.slow
def test_the_build_warns_about_nothing_and_the_metadata_is_complete(wheel: Path) -> None:
    log = (wheel.parent.parent / "build.log").read_text()
    assert "absent from the `packages` configuration" not in log
    assert "SetuptoolsDeprecationWarning" not in log
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(archive.read(n).decode() for n in archive.namelist()
                        if n.endswith(".dist-info/METADATA"))
        licenses = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert "License-Expression: Apache-2.0" in metadata
    assert licenses, "the LICENSE file is not in the wheel"
    for minor in (11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in metadata
    assert "example.invalid" not in metadata
    for requirement in ("fonttools>=4.40; extra == \"html\"", "pandas>=2.1; extra == \"data\"",
                        "pandas>=2.1; extra == \"torch\""):
        assert f"Requires-Dist: {requirement}" in metadata
    assert "Apache License" in (ROOT / "LICENSE").read_text()


CORE = ("numpy", "pydantic", "pluggy", "PyYAML", "Jinja2", "MarkupSafe", "threadpoolctl", "scipy")
"""The wheel's own dependencies; the bare environment gets these and what they need, nothing
else (no extra, no test tool)."""


def _with_dependencies(names: tuple[str, ...]) -> set[str]:
    from importlib import metadata

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency of a dependency, not installed here
        seen.add(key)
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))  # type: ignore[union-attr]
    return seen


def _link_distributions(names: set[str], folder: Path) -> None:
    """Symbolic links in ``folder`` to the installed files of the distributions ``names``."""
    from importlib import metadata

    folder.mkdir()
    for name in names:
        dist = metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or []
                if not str(f).startswith("..")}
        for top in tops:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (folder / top).exists():
                (folder / top).symlink_to(source)


@pytest.mark.slow
def test_a_bare_install_refuses_every_extra_with_exit_4(wheel: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", str(bare)], check=True, timeout=240)
    deps = tmp_path / "deps"
    _link_distributions(_with_dependencies(CORE), deps)
    python = bare / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True).stdout
    Path(site.strip(), "core_dependencies.pth").write_text(str(deps) + "\n")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, env=env, timeout=240)
    xaudit = str(bare / "bin" / "xaudit")
    folder = tmp_path / "work"
    folder.mkdir()
    rows = "a,b,y\n1,2,3\n4,5,9\n7,8,15\n2,2,4\n"
    (folder / "data.csv").write_text(rows)
    (folder / "model.onnx").write_bytes(b"never read")
    (folder / "model.pt").write_bytes(b"never read")
    import numpy as np

    X = np.arange(24.0).reshape(8, 3)
    np.savez(folder / "data.npz", X=X, y=X.sum(axis=1))
    (folder / "linear.py").write_text("def model(data):\n    return lambda X: X.sum(axis=1)\n")

    def suite(name: str, source: str, model: str, formats: str) -> str:
        model_line = f"factory: '{model}'" if ":" in model else f"path: {model}"
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\nmodel: {{{model_line}}}\ndata: {{source: {source}, "
            "explain: {n: 2}, background: {n: 2}}\nexplainers: [{id: a, method: ablation}]\n"
            f"report: {{formats: [{formats}]}}\n")
        return f"{name}.yaml"

    def call(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([xaudit, *argv], cwd=folder, capture_output=True, text=True,
                              env=env, timeout=240)

    saved = call("run", suite("ok", "data.npz", "linear:model", "json, md"), "--out", "saved")
    assert saved.returncode == 5, saved.stderr  # runs on the core alone (no gate: exit 5)
    cases = {
        "data": call("validate", suite("csv", "data.csv", "linear:model", "json")),
        "sklearn": call("run", suite("bunch", "'sklearn:diabetes'", "linear:model", "json")),
        "onnx": call("run", suite("onnx", "data.npz", "model.onnx", "json")),
        "torch": call("validate", suite("torch", "data.npz", "model.pt", "json")),
        "html": call("report", "saved", "--formats", "html"),
        "pdf": call("validate", suite("pdf", "data.npz", "linear:model", "pdf")),
    }
    for extra, done in cases.items():
        assert done.returncode == 4, (extra, done.stdout, done.stderr)
        assert f"pip install 'xaudit[{extra}]'" in done.stderr, (extra, done.stderr)
        assert "Traceback" not in done.stderr, (extra, done.stderr)
    explain = call("explain", "--model", "linear:model", "--data", "data.csv", "--target", "y")
    assert explain.returncode == 4
    assert "xaudit[data]" in explain.stderr
    assert "Traceback" not in explain.stderr
    plugins = call("plugins")
    assert plugins.returncode == 0, plugins.stderr
    for adapter in ("sklearn", "torch", "onnx", "xgboost", "lightgbm"):
        assert f"cannot run here: {adapter} (needs xaudit[{adapter}]" in plugins.stdout
    version = call("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("xaudit ")
