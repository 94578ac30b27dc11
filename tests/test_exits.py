"""``sys.exit()`` in user or plugin code never ends a run with exit 0 and nothing written.

Where it happens decides the outcome, as for any other exception raised there (docs/suites.md,
"Exit codes"): while the model is prepared (a factory module at import, the factory, the model's
predict on the explained rows) the suite's inputs are unusable: exit 4 with a message naming the
step and the call, nothing run. While the suite runs (a model's predict inside an explainer, an
explainer, a check) it is a crash recorded in the results like any other: exit 3, results
written. A plugin module that exits when imported crashes the command: exit 3.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from folder_support import Workspace, gate, status_of

from xaudit.results import AuditResult

pytest_plugins = ["folder_support"]  # its ``ws`` fixture: a workspace of models and plugins


@pytest.mark.parametrize(("factory", "models", "step"), [
    ("train", "exits_at_import", "model.factory"),
    ("exits", None, "model.factory"),
    ("exits_in_probe", None, "model: predict on the explained rows"),
], ids=["factory-module-import", "factory-function", "model-predict-in-probe"])
def test_exit_while_preparing_is_invalid_input(ws: Workspace, factory: str, models: str | None,
                                               step: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    module = getattr(ws, models) if models else None
    suite = ws.suite("prep-exit", factory=factory, models=module, checks=[gate()])
    out = ws.root / "out"
    assert status_of(["run", "-q", str(suite), "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert step in err
    assert "SystemExit: sys.exit(0) was called" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_exit_in_predict_inside_an_explainer_is_a_recorded_crash(ws: Workspace) -> None:
    suite = ws.suite("predict-exit", factory="exits_in_explainer",
                     explainers=[{"id": "abl", "method": "ablation"},
                                 {"id": "pause", "method": "test.pause"}],
                     checks=[gate("abl"), gate("pause")])
    out = ws.root / "out"
    assert status_of(["-p", ws.plugin, "run", "-q", str(suite), "--out", str(out)]) == 3
    result = AuditResult.load(out)
    error = result.explainer_errors["abl"]
    assert (error.type, error.message) == ("SystemExit", "sys.exit(0) was called")
    assert "sys.exit(0)" in error.traceback
    assert list(result.explanations) == ["pause"]  # the rest still ran
    statuses = {c.name: c.status for c in result.checks}
    assert statuses == {"completeness@abl": "error", "completeness@pause": "pass"}
    assert (out / "junit.xml").is_file()
    assert (out / "summary.md").is_file()


@pytest.mark.parametrize("where", ["explainer", "check"])
def test_exit_in_a_plugin_is_a_recorded_crash(ws: Workspace, where: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    explainers = [{"id": "abl", "method": "ablation"}]
    checks = [gate("abl")]
    if where == "explainer":
        explainers.append({"id": "quits", "method": "test.exit"})
    else:
        checks.append({"check": "test.exit", "explainer": "abl", "gate": {"threshold": 1.0}})
    suite = ws.suite(f"{where}-exit", explainers=explainers, checks=checks)
    out = ws.root / "out"
    assert status_of(["-p", ws.plugin, "run", "-q", str(suite), "--out", str(out)]) == 3
    assert "CRASHED (exit 3)" in capsys.readouterr().out
    document = json.loads((out / "results.json").read_text())
    assert document["exit_code"] == 3
    if where == "explainer":
        error = document["explainer_errors"]["quits"]
    else:
        (error,) = [c["error"] for c in document["checks"] if c["check"] == "test.exit"]
    assert error["type"] == "SystemExit"
    assert error["message"] == "sys.exit(0) was called"
    passed = [c["name"] for c in document["checks"] if c["status"] == "pass"]
    assert passed == ["completeness@abl"]
    assert "SystemExit: sys.exit" in (out / "summary.md").read_text()


def test_exit_in_a_report_section_is_shown_as_its_error(ws: Workspace,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jinja2")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("XAUDIT_TEST_PAUSE", "section-exit")
    suite = ws.suite("section-exit", checks=[gate()], formats=["json", "html"])
    out = ws.root / "out"
    # a failed section, as for any exception there: listed on stderr, exit 3 (issue 18)
    assert status_of(["-p", ws.plugin, "run", "-q", str(suite), "--out", str(out)]) == 3
    html = (out / "report.html").read_text()
    assert "SystemExit: 0" in html
    assert "Executive summary" in html  # the other sections rendered


def test_exit_when_a_plugin_module_is_imported_is_a_crash(
        ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    suite = ws.suite("plugin-import-exit", checks=[gate()])
    assert status_of(["-p", ws.exits_at_import, "run", "-q", str(suite),
                      "--out", str(ws.root / "out")]) == 3
    assert "SystemExit" in capsys.readouterr().err


def test_exit_in_an_explainer_through_a_real_process(ws: Workspace) -> None:
    """What a CI job sees: the exit status of ``python -m xaudit``, and the files."""
    suite = ws.suite("process-exit", explainers=[{"id": "abl", "method": "ablation"},
                                                 {"id": "quits", "method": "test.exit"}],
                     checks=[gate("abl")])
    out = ws.root / "out"
    process = subprocess.run(
        [sys.executable, "-m", "xaudit", "-p", ws.plugin, "run", "-q", str(suite),
         "--out", str(out)], cwd=ws.root, env=ws.env(), capture_output=True, text=True,
        timeout=300, check=False)
    assert process.returncode == 3, process.stderr
    assert "CRASHED (exit 3)" in process.stdout
    result = AuditResult.load(out)
    assert result.explainer_errors["quits"].type == "SystemExit"
    assert result.checks[0].status == "pass"
