"""Shared pieces of the output-folder and exit tests: a workspace with a factory module and a
test plugin that exits, or pauses at a chosen phase of a run so that a test can signal it there.

The plugin pauses where ``XAUDIT_TEST_PAUSE`` says (``explain``: inside an explainer;
``write-results``: half-way through writing ``results.json``; ``render``: while the HTML report
is rendered; ``pdf``: when the PDF is rendered, the other files written; ``publish``: between
the two renames that replace the folder), writes
``paused-<phase>`` into the folder ``XAUDIT_TEST_FLAGS`` and waits there until a file ``go``
appears, so the test signals it at a known moment instead of sleeping and hoping.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from xaudit.cli import main

MODELS = '''\
"""Model factories for the output-folder tests, fitted in milliseconds."""

import sys

from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeRegressor


class ExitsOnLargeBatches(LinearRegression):
    """Exits in predict on more than 8 rows: after the probe, inside an explainer."""

    def predict(self, X):
        if len(X) > 8:
            sys.exit(0)
        return super().predict(X)


class ExitsInPredict(LinearRegression):
    def predict(self, X):
        sys.exit(0)


def linear(data):
    return LinearRegression().fit(data.X_train, data.y_train)


def tree(data):
    return DecisionTreeRegressor(max_depth=4, random_state=0).fit(data.X_train, data.y_train)


def exits(data):
    sys.exit(0)


def exits_in_explainer(data):
    return ExitsOnLargeBatches().fit(data.X_train, data.y_train)


def exits_in_probe(data):
    return ExitsInPredict().fit(data.X_train, data.y_train)
'''

EXITS_AT_IMPORT = '''\
import sys

sys.exit(0)


def train(data):
    raise AssertionError("never reached")
'''

PLUGIN = '''\
"""Test plugin: explainers, a check and a report section that exit or pause."""

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from xaudit import Attribution, Check, Explainer, ReportSection, hookimpl

PHASE = os.environ.get("XAUDIT_TEST_PAUSE", "")
FLAGS = Path(os.environ.get("XAUDIT_TEST_FLAGS", "."))
# A process started in the background may inherit SIGINT ignored; this one must see it.
signal.signal(signal.SIGINT, signal.default_int_handler)


def pause(phase):
    if phase != PHASE or (FLAGS / "go").exists():
        return
    (FLAGS / f"paused-{phase}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not (FLAGS / "go").exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the test never released the pause")
        time.sleep(0.02)


class Pause(Explainer):
    """Zero attributions from the output itself (complete for a single-output regressor),
    after pausing when the phase is ``explain``; leaves a file ``explained``."""

    name = "test.pause"

    def explain(self, model, X, *, background, targets, rng):
        (FLAGS / "explained").write_text("")
        pause("explain")
        return Attribution(values=np.zeros((X.shape[0], X.shape[1], targets.n_slots)),
                           base_values=model.predict(X)[:, : targets.n_slots])


class Exit(Explainer):
    name = "test.exit"

    def explain(self, model, X, *, background, targets, rng):
        sys.exit(0)


class ExitCheck(Check):
    name = "test.exit"
    direction = "lower"

    def run(self, model, explanation, data, rng):
        sys.exit(0)


class ExitSection(ReportSection):
    name = "test.exit"
    title = "Exits"
    order = 1
    template = "test_exit.html.j2"

    def context(self, result):
        if PHASE == "section-exit":
            sys.exit(0)
        pause("render")
        return None


_write = os.write
_rename = os.rename


def _paused_write(fd, data):
    if PHASE == "write-results" and os.readlink(f"/proc/self/fd/{fd}").endswith(
            "results.json.part"):
        done = _write(fd, bytes(data[: len(data) // 2]))
        pause("write-results")
        return done
    return _write(fd, data)


def _paused_rename(source, target, *args, **kwargs):
    _rename(source, target, *args, **kwargs)
    if str(target).endswith(".previous"):
        pause("publish")


if PHASE == "write-results":
    os.write = _paused_write
if PHASE == "publish":
    os.rename = _paused_rename
if PHASE == "pdf":
    import xaudit.reports.pdf

    _render_pdf = xaudit.reports.pdf.render_pdf

    def _paused_render_pdf(*args, **kwargs):
        pause("pdf")
        return _render_pdf(*args, **kwargs)

    xaudit.reports.pdf.render_pdf = _paused_render_pdf


@hookimpl
def xaudit_register_explainers(registry):
    registry.add(Pause)
    registry.add(Exit)


@hookimpl
def xaudit_register_checks(registry):
    registry.add(ExitCheck)


@hookimpl
def xaudit_register_report_sections(registry):
    registry.add(ExitSection)
'''

FORMATS = ["json", "md", "junit"]


@dataclass
class Workspace:
    """A folder holding the factory module, the test plugin and the suites."""

    root: Path
    models: str
    plugin: str
    exits_at_import: str
    flags: Path

    def suite(self, name: str, factory: str = "linear", explainers: Sequence[dict[str, Any]] = (),
              checks: Sequence[dict[str, Any]] = (), formats: Sequence[str] = FORMATS,
              models: str | None = None, **extra: Any) -> Path:
        document: dict[str, Any] = {
            "name": name,
            "seed": 3,
            "model": {"factory": f"{models or self.models}:{factory}"},
            "data": {"source": "sklearn:diabetes", "explain": {"n": 6},
                     "background": {"n": 12}},
            "explainers": list(explainers) or [{"id": "abl", "method": "ablation"}],
            "checks": list(checks),
            "report": {"formats": list(formats)},
            **extra,
        }
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def passing(self) -> Path:
        """A suite whose gate passes (ablation is exact for a linear model)."""
        return self.suite("passing", checks=[gate()])

    def failing(self, formats: Sequence[str] = FORMATS) -> Path:
        """A suite whose gate fails, with the pausing explainer: a tree is not additive."""
        return self.suite("failing", factory="tree", checks=[gate(threshold=1e-12)],
                          explainers=[{"id": "abl", "method": "ablation"},
                                      {"id": "pause", "method": "test.pause"}],
                          formats=formats)

    def env(self, phase: str = "") -> dict[str, str]:
        return {**os.environ, "XAUDIT_TEST_PAUSE": phase, "XAUDIT_TEST_FLAGS": str(self.flags),
                "PYTHONPATH": os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")])}

    def start(self, argv: Sequence[str], phase: str = "") -> subprocess.Popen[str]:
        """``python -m xaudit -p PLUGIN ARGV`` in a new process, pausing at ``phase``."""
        return subprocess.Popen(
            [sys.executable, "-m", "xaudit", "-p", self.plugin, *argv], cwd=self.root,
            env=self.env(phase), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_paused(self, process: subprocess.Popen[str], phase: str) -> None:
        """Return once ``process`` waits at ``phase``; fail with its output if it ended."""
        flag = self.flags / f"paused-{phase}"
        deadline = time.monotonic() + 120
        while not flag.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                out, err = process.communicate()
                raise AssertionError(f"never paused at {phase}: exit {process.returncode}\n"
                                     f"{out}\n{err}")
            time.sleep(0.02)

    def release(self) -> None:
        (self.flags / "go").write_text("")


def make_workspace(root: Path) -> Workspace:
    tag = uuid.uuid4().hex
    flags = root / "flags"
    flags.mkdir()
    ws = Workspace(root, f"folder_models_{tag}", f"folder_plugin_{tag}",
                   f"exits_at_import_{tag}", flags)
    (root / f"{ws.models}.py").write_text(MODELS)
    (root / f"{ws.plugin}.py").write_text(PLUGIN)
    (root / f"{ws.exits_at_import}.py").write_text(EXITS_AT_IMPORT)
    return ws


def forget_modules(ws: Workspace) -> None:
    """Unload the workspace's modules, so that the next test imports its own."""
    for name in (ws.models, ws.plugin, ws.exits_at_import):
        sys.modules.pop(name, None)


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A workspace on the import path whose models read their flags from it; its modules are
    unloaded afterwards. Test modules import it as their ``ws`` fixture."""
    workspace = make_workspace(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("XAUDIT_TEST_FLAGS", str(workspace.flags))
    yield workspace
    forget_modules(workspace)


def gate(explainer: str = "abl", threshold: float = 1e-8) -> dict[str, Any]:
    return {"check": "completeness", "explainer": explainer, "gate": {"threshold": threshold}}


def status_of(argv: Sequence[str]) -> int:
    """The exit status a shell would see: ``main``'s return value or its SystemExit code."""
    try:
        return main(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def snapshot(folder: Path) -> dict[str, str]:
    """Each entry of ``folder`` with the SHA-256 of its bytes (``link`` for a link)."""
    return {p.name: "link" if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir())}


def leftovers(folder: Path) -> list[str]:
    """What xaudit left beside ``folder``: staging or previous folders, a lock file."""
    return sorted(p.name for p in folder.parent.iterdir()
                  if p.name.startswith(f".{folder.name}.xaudit"))


def signal_name(number: int) -> str:
    return signal.Signals(number).name
