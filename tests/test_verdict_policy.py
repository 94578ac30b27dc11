"""One verdict everywhere: the exit code, results.json, summary.md, junit.xml, the HTML report
and the PDF cover state the same verdict, under ``--fail-on-warn`` too, and a re-render of
the saved folder states it again; ``xaudit run --formats`` chooses the outputs.

The suites audit a depth-4 decision tree, which ablation cannot explain additively: its
completeness error, recomputed here from scikit-learn's predictions (brute-force ablation), is
well above 1e-9 and below 1e6, so a gate ``<= 1e6`` with ``warn_threshold: 1e-9`` warns. What
each output says is read with independent parsers (json, ElementTree, pypdf).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_diabetes

from xaudit.cli import main
from xaudit.results import AuditResult
from xaudit.verdict import GatePolicy, decide

MODELS = '''\
from sklearn.tree import DecisionTreeRegressor

FITTED = []


def tree(data):
    model = DecisionTreeRegressor(max_depth=4, random_state=0).fit(data.X_train, data.y_train)
    FITTED.append(model)
    return model
'''
WARN_GATE = {"threshold": 1.0e6, "warn_threshold": 1.0e-9}


def write_suite(folder: Path, name: str, gate: dict[str, Any], **extra: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "verdict_models.py").write_text(MODELS)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "seed": 5,
        "model": {"factory": "verdict_models:tree"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 5}, "background": {"n": 10}},
        "explainers": [{"id": "abl", "method": "ablation"}],
        "checks": [{"check": "completeness", "explainer": "abl", "gate": gate}],
        "report": {"formats": ["json", "md", "junit"]},
        **extra,
    }, sort_keys=False))
    return path


def completeness_oracle(result: AuditResult, model: Any) -> float:
    """max over rows of |sum_i phi_i + base - f(x)|, phi by brute-force ablation of the fitted
    tree against the same background rows (taken from scikit-learn's copy of the data)."""
    X, _ = load_diabetes(return_X_y=True)
    rows = X[np.asarray(result.data["explain_rows"])]
    background = X[np.asarray(result.data["sampling"]["background"]["rows"])]
    base = model.predict(background).mean()
    errors = []
    for x in rows:
        fx = model.predict(x[None, :])[0]
        phi = []
        for i in range(x.size):
            perturbed = np.repeat(x[None, :], background.shape[0], axis=0)
            perturbed[:, i] = background[:, i]
            phi.append(fx - model.predict(perturbed).mean())
        errors.append(abs(sum(phi) + base - fx))
    return float(max(errors))


@dataclass
class Run:
    out: Path
    code: int
    printed: str
    model: Any


@pytest.fixture(scope="module")
def warned(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The warned suite run with --fail-on-warn, every output written."""
    root = tmp_path_factory.mktemp("verdict")
    suite = write_suite(root, "warned", WARN_GATE)
    out = root / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["run", "-q", str(suite), "--out", str(out), "--fail-on-warn",
                     "--formats", "json,md,junit,html,pdf"])
    return Run(out, code, printed.getvalue(), sys.modules["verdict_models"].FITTED[-1])


def stated_verdicts(out: Path) -> dict[str, str]:
    """The verdict each output in ``out`` states, read with each format's own parser."""
    found: dict[str, str] = {}
    document = json.loads((out / "results.json").read_text())
    found["results.json"] = document["verdict"]
    found["summary.md"] = (out / "summary.md").read_text().splitlines()[0].rsplit(": ", 1)[1]
    properties = {p.get("name"): p.get("value") for p in
                  ET.parse(out / "junit.xml").getroot().iter("property")}
    found["junit.xml"] = str(properties["xaudit.verdict"])
    if (out / "report.html").exists():
        html = (out / "report.html").read_text()
        verdict = re.search(r'Overall verdict: <span class="verdict [^"]+">([A-Z ]+)</span>', html)
        assert verdict is not None
        found["report.html"] = verdict.group(1)
    if (out / "report.pdf").exists():
        from pypdf import PdfReader

        cover = PdfReader(out / "report.pdf").pages[0].extract_text()
        verdict = re.search(r"Overall verdict\s+([A-Z]+)", cover)
        assert verdict is not None, cover
        found["report.pdf"] = verdict.group(1)
    return found


def test_fail_on_warn_fails_in_every_output(warned: Run) -> None:
    out = warned.out
    assert warned.code == 1
    verdicts = stated_verdicts(out)
    assert set(verdicts) == {"results.json", "summary.md", "junit.xml", "report.html",
                             "report.pdf"}
    assert set(verdicts.values()) == {"FAILED"}, verdicts
    document = json.loads((out / "results.json").read_text())
    assert document["exit_code"] == 1
    assert document["gate_policy"] == {"fail_on_warn": True}
    assert document["suite"]["gate_policy"] == {"fail_on_warn": True}
    (check,) = document["checks"]
    assert check["status"] == "warn"  # what the gate measured stays a warning


def test_the_warned_check_is_a_junit_failure(warned: Run) -> None:
    out = warned.out
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.get("type") == "GateWarnedFailOnWarn"
    assert "fails the run (gate_policy.fail_on_warn)" in str(failure.get("message"))


def test_the_warn_line_names_the_threshold_it_crossed(warned: Run) -> None:
    out = warned.out
    result = AuditResult.load(out)
    (check,) = result.checks
    assert check.value is not None
    assert check.value == pytest.approx(completeness_oracle(result, warned.model), rel=1e-9)
    assert 1e-9 < check.value < 1e6  # the oracle agrees that the gate must warn
    line = next(t for t in warned.printed.splitlines() if t.startswith("completeness@abl"))
    assert line == (f"completeness@abl: WARN value {check.value:.6g} (gate: <= 1e+06; warning "
                    "threshold <= 1e-09 crossed): fails the run (gate_policy.fail_on_warn)")
    assert "warns beyond 1e-09" in (out / "summary.md").read_text()


def test_a_rerender_states_the_recorded_verdict(warned: Run,
                                                tmp_path: Path) -> None:
    out = warned.out
    again = tmp_path / "again"
    assert main(["report", str(out), "--formats", "json,md,junit,html", "--out",
                 str(again)]) == 0
    assert set(stated_verdicts(again).values()) == {"FAILED"}


def test_without_the_policy_a_warning_passes_everywhere(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "lenient", WARN_GATE)
    assert main(["run", "-q", str(suite), "--out", str(tmp_path / "out"), "--formats",
                 "md,junit,html"]) == 0
    assert set(stated_verdicts(tmp_path / "out").values()) == {"PASSED"}
    suite = write_suite(tmp_path, "strict", WARN_GATE, gate_policy={"fail_on_warn": True})
    assert main(["run", "-q", str(suite), "--out", str(tmp_path / "strict")]) == 1
    assert set(stated_verdicts(tmp_path / "strict").values()) == {"FAILED"}


def test_severity_warn_names_the_gate_it_crossed(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path, "severity", {"threshold": 1e-9, "severity": "warn"})
    assert main(["run", "-q", str(suite), "--out", str(tmp_path / "out")]) == 0
    assert "(gate: <= 1e-09; crossed, and severity: warn makes it a warning)" in (
        capsys.readouterr().out)


@pytest.mark.parametrize(("statuses", "crashed", "fail_on_warn", "expected"), [
    (["pass", "warn"], False, False, 0), (["pass", "warn"], False, True, 1),
    (["fail", "warn"], False, False, 1), (["not_gated"], False, True, 5),
    (["warn"], True, True, 3), (["pass", "error"], False, False, 3), ([], False, False, 5),
])
def test_decide_follows_the_documented_order(statuses: list[str], crashed: bool,
                                             fail_on_warn: bool, expected: int) -> None:
    assert int(decide(statuses, crashed, GatePolicy(fail_on_warn=fail_on_warn))) == expected


def test_formats_choose_the_outputs_without_editing_the_suite(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "formats", WARN_GATE)
    text = suite.read_text()
    out = tmp_path / "out"
    assert main(["run", "-q", str(suite), "--out", str(out), "--formats", "md"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "manifest.json",
                                                     "results.json", "summary.md"]
    assert json.loads((out / "results.json").read_text())["suite"]["report"]["formats"] == ["md"]
    assert suite.read_text() == text
    assert main(["run", "-q", str(suite), "--out", str(tmp_path / "bad"), "--formats",
                 "md,docx"]) == 4
    assert not (tmp_path / "bad").exists()
