"""The wheel holds the whole package and works without the source tree.

setup.py computes the package list from the folders, so a new family subpackage cannot silently
drop out of the wheel; this test builds the wheel (offline, with the environment's setuptools),
checks that every module, report resource and scaffold template is in it, and imports every
built-in plugin from the unpacked wheel in a fresh interpreter, never from the editable source.
"""

from __future__ import annotations

import json
import os
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
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", *FOLDERS)
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
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
         str(out), str(source)], capture_output=True, text=True, env=env, check=False,
        timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
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
