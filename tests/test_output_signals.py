"""A run killed at any moment leaves a consistent folder; two runs never write one folder.

Each test runs ``python -m xaudit`` as a real process on a cheap suite, with a test plugin
(tests/folder_support.py) that pauses it at a known phase: inside an explainer, half-way
through ``results.json``, while the HTML report renders, when the PDF renders, or between the
two renames that replace the folder. The test then sends SIGTERM, SIGINT or SIGKILL and
compares the folder's bytes with what was there before. A folder is consistent when
``results.json``, ``summary.md`` and ``junit.xml`` tell the same verdict of the same suite and
``AuditResult.load`` reads it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from folder_support import (
    FORMATS,
    Workspace,
    leftovers,
    signal_name,
    snapshot,
    status_of,
)

from xaudit.reports.junit import JUNIT_FILE
from xaudit.reports.markdown import SUMMARY_FILE
from xaudit.results import RESULTS_FILE, AuditResult

pytest_plugins = ["folder_support"]  # its ``ws`` fixture: a workspace of models and plugins

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the test plugin finds files through /proc")
PHASES = ["explain", "write-results", "render", "pdf", "publish"]
REPORT_FORMATS = {"render": [*FORMATS, "html"], "pdf": [*FORMATS, "html", "pdf"]}


@pytest.fixture
def previous(ws: Workspace) -> Path:
    """A folder holding a complete passing run (written in-process)."""
    out = ws.root / "out"
    assert status_of(["run", "-q", str(ws.passing()), "--out", str(out)]) == 0
    return out


def assert_consistent(folder: Path, exit_code: int) -> None:
    document = json.loads((folder / RESULTS_FILE).read_text())
    assert document["exit_code"] == exit_code
    verdict = {0: "PASSED", 1: "FAILED"}[exit_code]
    assert (folder / SUMMARY_FILE).read_text().startswith(
        f"# xaudit: {document['suite_name']}: {verdict}")
    suite = ET.parse(folder / JUNIT_FILE).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("name") == f"xaudit: {document['suite_name']}"
    assert int(suite.get("failures", "-1")) == document["counts"]["checks_fail"]
    assert AuditResult.load(folder).suite_name == document["suite_name"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=signal_name)
@pytest.mark.parametrize("phase", PHASES)
def test_interrupted_run_leaves_a_complete_run(ws: Workspace, previous: Path, phase: str,
                                               sig: signal.Signals) -> None:
    """Before the folder is replaced: the previous run, byte for byte. During the replacement
    (the signal is held back): the new run, complete. Never a mix, never a missing folder."""
    if phase in REPORT_FORMATS:
        pytest.importorskip("weasyprint")
    formats = REPORT_FORMATS.get(phase, FORMATS)
    before = snapshot(previous)
    process = ws.start(["run", "-q", str(ws.failing(formats)), "--out", str(previous)], phase)
    ws.wait_paused(process, phase)
    process.send_signal(sig)
    if phase == "publish":
        ws.release()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert "xaudit: interrupted" in err
    assert "Traceback" not in err
    if phase == "publish":
        assert_consistent(previous, 1)
    else:
        assert snapshot(previous) == before
    assert leftovers(previous) == []


def test_interrupted_report_keeps_the_folder(ws: Workspace, previous: Path) -> None:
    """``xaudit report`` re-rendering in place follows the same rule."""
    before = snapshot(previous)
    process = ws.start(["report", str(previous), "--formats", "html,md"], "render")
    ws.wait_paused(process, "render")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert snapshot(previous) == before
    assert leftovers(previous) == []


def test_killed_run_is_cleaned_up_by_the_next(ws: Workspace, previous: Path) -> None:
    """SIGKILL cannot be caught: the unfinished folder stays beside the target, hidden and
    named ``.incomplete``, and the next run into the folder removes it."""
    before = snapshot(previous)
    process = ws.start(["run", "-q", str(ws.failing()), "--out", str(previous)], "explain")
    ws.wait_paused(process, "explain")
    process.kill()
    process.communicate(timeout=120)
    assert snapshot(previous) == before
    assert any(name.endswith(".incomplete") for name in leftovers(previous))
    assert status_of(["run", "-q", str(ws.passing()), "--out", str(previous)]) == 0
    assert leftovers(previous) == []
    assert_consistent(previous, 0)


def test_run_killed_between_the_renames_is_put_back(ws: Workspace, previous: Path) -> None:
    """Killed with the previous folder renamed aside and the new one not yet in: the next
    command into the folder (here ``xaudit report``) puts the previous run back first."""
    before = snapshot(previous)
    process = ws.start(["run", "-q", str(ws.failing()), "--out", str(previous)], "publish")
    ws.wait_paused(process, "publish")
    process.kill()
    process.communicate(timeout=120)
    assert not previous.exists()
    assert any(name.endswith(".previous") for name in leftovers(previous))
    assert status_of(["report", str(previous), "--formats", "md"]) == 0
    assert snapshot(previous) == before  # the same results render the same summary.md
    assert leftovers(previous) == []


def test_second_run_into_a_locked_folder_is_refused(ws: Workspace, previous: Path) -> None:
    holder = ws.start(["run", "-q", str(ws.failing()), "--out", str(previous)], "explain")
    ws.wait_paused(holder, "explain")
    second = subprocess.run(
        [sys.executable, "-m", "xaudit", "run", "-q", str(ws.passing()), "--out",
         str(previous)], cwd=ws.root, env=ws.env(), capture_output=True, text=True,
        timeout=300, check=False)
    assert second.returncode == 4, second.stderr
    assert f"is being written by another xaudit run (pid {holder.pid} on " in second.stderr
    ws.release()
    _, err = holder.communicate(timeout=120)
    assert holder.returncode == 1, err
    assert_consistent(previous, 1)
    assert leftovers(previous) == []


def test_two_runs_started_together_leave_one_complete_run(ws: Workspace) -> None:
    out = ws.root / "shared"
    suites = [ws.passing(), ws.failing()]
    processes = [ws.start(["run", "-q", str(suite), "--out", str(out)]) for suite in suites]
    codes = [p.wait(timeout=300) for p in processes]
    assert codes in ([0, 1], [0, 4], [4, 1]), [p.communicate() for p in processes]
    document = json.loads((out / RESULTS_FILE).read_text())
    if 4 in codes:
        assert document["exit_code"] == codes[1 - codes.index(4)]
    assert_consistent(out, document["exit_code"])
    assert leftovers(out) == []
