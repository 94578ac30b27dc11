"""``xaudit run --baseline`` and ``xaudit diff`` in-process: refusals (exit 4), skipped drift
checks, relative gates, comparison.json, and the governance example's four runs.

Suites train scikit-learn models on the diabetes data in milliseconds; expected numbers are
recomputed from the saved arrays with scipy or from the fitted estimators with scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy import stats
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from xaudit.cli import main
from xaudit.data import split_rows
from xaudit.results import AuditResult
from xaudit.seeding import derive_seed, rng_for

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "governance"

MODELS = '''\
"""Factories for the governance CLI tests."""

import numpy as np
from sklearn.linear_model import LinearRegression


def approved(data):
    return LinearRegression().fit(data.X_train, data.y_train)


def shuffled(data):
    y = np.random.default_rng(0).permutation(data.y_train)
    return LinearRegression().fit(data.X_train, y)
'''

DRIFT = [{"check": f"drift.{name}", "explainer": "abl", "gate": {"threshold": threshold}}
         for name, threshold in (("rank_correlation", 0.8), ("share", 0.1), ("top_k", 0),
                                 ("distribution", 0.2), ("sign_flips", 0))]
CHECKS = [{"check": "performance.r2", "params": {"n_boot": 20}, "gate": {"threshold": 0.2}},
          {"check": "performance.r2", "id": "r2_vs_approved",
           "params": {"n_boot": 0, "segments": False},
           "gate": {"threshold": -0.05, "relative_to": "baseline"}},
          *DRIFT]


class Workspace:
    """A folder with a factory module on ``sys.path`` and suites written into it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.models = f"xaudit_gov_models_{uuid.uuid4().hex}"
        (root / f"{self.models}.py").write_text(MODELS)

    def suite(self, file: str, factory: str = "approved", name: str = "gate",
              checks: Sequence[dict[str, Any]] = CHECKS, **extra: Any) -> Path:
        data = {"source": "sklearn:diabetes", "explain": {"n": 12}, "background": {"n": 20},
                **extra.pop("data", {})}
        document: dict[str, Any] = {
            "name": name, "seed": 3, "model": {"factory": f"{self.models}:{factory}"},
            "data": data, "explainers": [{"id": "abl", "method": "ablation"}],
            "checks": list(checks), "report": {"formats": ["json", "md", "junit"]}, **extra}
        path = self.root / f"{file}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield workspace
    sys.modules.pop(workspace.models, None)


@pytest.fixture
def approved(ws: Workspace) -> Path:
    """The approved run's results folder."""
    out = ws.root / "approved"
    assert main(["run", "-q", str(ws.suite("approved")), "--out", str(out)]) == 0
    return out


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_without_a_baseline_drift_is_skipped_and_relative_gates_are_not_evaluated(
        approved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = AuditResult.load(approved)
    checks = {c.name: c for c in result.checks}
    for spec in DRIFT:
        skipped = checks[f"{spec['check']}@abl"]
        assert (skipped.status, skipped.value, skipped.threshold) == ("not_gated", None, None)
        assert skipped.skipped is not None
        assert "pass --baseline DIR" in skipped.skipped
    relative = checks["r2_vs_approved"]
    assert relative.status == "not_gated"
    assert relative.value == checks["performance.r2"].value
    assert relative.skipped is not None
    assert "relative to the approved run" in relative.skipped
    assert "baseline" not in result.provenance
    assert not (approved / "comparison.json").exists()


def test_a_candidate_is_gated_against_the_approved_run(ws: Workspace, approved: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "candidate"
    before = digest(approved)
    code = main(["run", "-q", str(ws.suite("candidate", "shuffled")), "--out", str(out),
                 "--baseline", str(approved)])
    assert code == 1
    assert digest(approved) == before  # the baseline folder is only read
    base, now = AuditResult.load(approved), AuditResult.load(out)
    checks = {c.name: c for c in now.checks}
    base_r2 = next(c.value for c in base.checks if c.name == "performance.r2")
    assert base_r2 is not None
    relative = checks["r2_vs_approved"]
    assert relative.threshold == pytest.approx(base_r2 - 0.05)
    assert relative.details["gate_relative_to_baseline"] == {"baseline_value": base_r2,
                                                             "offset": -0.05}
    assert (f"the approved run's value, {base_r2:.4g}, minus 0.05"
            in relative.handoff.statements[-1])  # the verdict line says where the gate came from
    model_r2 = relative.value
    assert model_r2 is not None
    assert model_r2 < base_r2 - 0.05
    assert relative.status == "fail"
    # the drift checks ran on the same rows (same data): W1 per feature, as scipy computes it
    before_values = base.explanations["abl"].values[..., 0]
    after_values = now.explanations["abl"].values[..., 0]
    distances = [stats.wasserstein_distance(before_values[:, j], after_values[:, j])
                 for j in range(before_values.shape[1])]
    scale = np.abs(before_values).mean(axis=0).sum()
    assert checks["drift.distribution@abl"].value == pytest.approx(max(distances) / scale)
    assert checks["drift.distribution@abl"].details["paired_rows"] is True
    provenance = now.provenance["baseline"]
    assert provenance["results_sha256"] == before["results.json"]
    assert provenance["model_sha256"] == base.model["sha256"]
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["same_data"] is True
    gate = next(g for g in comparison["gates"] if g["name"] == "performance.r2")
    assert gate["margin_before"] == pytest.approx(base_r2 - 0.2)
    assert gate["margin_after"] == pytest.approx(checks["performance.r2"].value - 0.2)
    stdout = capsys.readouterr().out
    assert "r2_vs_approved: FAIL" in stdout


def _shares(result: AuditResult, key: str) -> dict[str, float]:
    """Each feature's share of mean |attribution| (summed over outputs), computed here."""
    explanation = result.explanations[key]
    scores = np.abs(explanation.values).mean(axis=0).sum(axis=-1)
    return dict(zip(explanation.feature_names, scores / scores.sum(), strict=True))


def test_the_summary_shows_each_top_features_change_against_the_approved_run(
        ws: Workspace, approved: Path) -> None:
    out = ws.root / "candidate"
    main(["run", "-q", str(ws.suite("candidate", "shuffled")), "--out", str(out),
          "--baseline", str(approved)])
    before = _shares(AuditResult.load(approved), "abl")
    after = _shares(AuditResult.load(out), "abl")
    top = sorted(after, key=lambda name: -after[name])[:5]
    expected = "- abl: " + ", ".join(
        f"{name} {100 * after[name]:.0f}% ({100 * (after[name] - before[name]):+.0f} points; "
        f"{100 * before[name]:.0f}% in the approved run)" for name in top)
    summary = (out / "summary.md").read_text()
    assert "## Top features (share of mean |attribution|; change against the approved run)" in (
        summary)
    assert expected in summary.splitlines()
    # the approved shares travel in results.json: a re-render writes the same lines
    rendered = ws.root / "rendered"
    assert main(["report", "-q", str(out), "--formats", "md", "--out", str(rendered)]) == 0
    assert expected in (rendered / "summary.md").read_text().splitlines()
    # without a baseline, shares only
    plain = (approved / "summary.md").read_text()
    assert "in the approved run" not in plain
    assert "- abl: " + ", ".join(
        f"{name} {100 * before[name]:.0f}%"
        for name in sorted(before, key=lambda name: -before[name])[:5]) in plain.splitlines()


def test_a_feature_absent_from_the_approved_run_is_named_so(ws: Workspace, approved: Path,
                                                            tmp_path: Path) -> None:
    """A hand-edited baseline record (received data): a feature it lacks reads as absent, and
    entries that are not numbers are passed over, never trusted."""
    from xaudit.reports.markdown import summary_markdown

    result = AuditResult.load(approved)
    shares = _shares(result, "abl")
    top = max(shares, key=lambda name: shares[name])
    recorded = {name: share for name, share in shares.items() if name != top}
    recorded[next(iter(recorded))] = "0.5"  # not a number: dropped, so that feature is absent
    result.provenance["baseline"] = {"attribution_shares": {"abl": {
        result.explanations["abl"].method: recorded}}}
    line = next(line for line in summary_markdown(result).splitlines() if line.startswith("- abl:"))
    assert f"{top} {100 * shares[top]:.0f}% (absent in the approved run)" in line


def test_the_approved_run_against_itself_shows_no_drift(ws: Workspace, approved: Path) -> None:
    out = ws.root / "again"
    assert main(["run", "-q", str(ws.suite("approved")), "--out", str(out), "--baseline",
                 str(approved)]) == 0
    values = {c.check: c.value for c in AuditResult.load(out).checks if c.check.startswith("drift")}
    assert values == {"drift.rank_correlation": pytest.approx(1.0), "drift.share": 0.0,
                      "drift.top_k": 0.0, "drift.distribution": 0.0, "drift.sign_flips": 0.0}


def test_the_suite_names_its_baseline_relative_to_itself(ws: Workspace, approved: Path) -> None:
    folder = ws.root / "suites"
    folder.mkdir()
    suite = ws.suite("candidate", "shuffled", baseline="../approved")
    shutil.move(suite, folder / suite.name)
    out = ws.root / "candidate"
    assert main(["run", "-q", str(folder / suite.name), "--out", str(out)]) == 1
    assert AuditResult.load(out).provenance["baseline"]["path"].endswith("approved")


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], out: Path) -> str:
    assert main(argv) == 4
    assert not out.exists(), "nothing runs when the baseline is refused"
    return capsys.readouterr().err


def test_an_explainer_chosen_by_auto_is_compared_by_the_method_it_ran(ws: Workspace) -> None:
    auto = [{"id": "abl", "method": "auto"}]
    approved, candidate = ws.root / "approved-auto", ws.root / "candidate-auto"
    assert main(["run", "-q", str(ws.suite("approved-auto", explainers=auto)),
                 "--out", str(approved)]) == 0
    code = main(["run", "-q", str(ws.suite("candidate-auto", "shuffled", explainers=auto)),
                 "--out", str(candidate), "--baseline", str(approved)])
    assert code == 1  # compared (not refused: 4), and the shuffled labels fail
    now = AuditResult.load(candidate)
    method = now.explanations["abl"].method
    assert method == AuditResult.load(approved).explanations["abl"].method != "auto"
    rank = next(c for c in now.checks if c.name == "drift.rank_correlation@abl")
    assert rank.status in ("pass", "fail")  # evaluated against the approved run


def test_mismatched_baselines_are_refused_naming_what_differs(
        ws: Workspace, approved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "refused"
    run = ["run", "-q", "--out", str(out), "--baseline", str(approved)]
    err = _refused([*run, str(ws.suite("other", name="another-gate"))], capsys, out)
    assert "the baseline is a run of suite 'gate', this is 'another-gate'" in err
    fewer = ws.suite("fewer", data={"features": ["age", "sex", "bmi", "bp", "s1", "s2", "s3",
                                                 "s4", "s5"]})
    err = _refused([*run, str(fewer)], capsys, out)
    assert "the features differ from the baseline's (missing: s6)" in err
    assert main([*run, str(fewer), "--allow-feature-changes"]) in (0, 1)  # compared, not refused
    shutil.rmtree(out)
    other_method = ws.suite("kernel", explainers=[{"id": "abl", "method": "shap.kernel",
                                                   "params": {"n_samples": 64}}])
    err = _refused([*run, str(other_method)], capsys, out)
    assert "explainer 'abl' is shap.kernel now and ablation in the baseline" in err
    renamed = ws.suite("renamed", explainers=[{"id": "abl2", "method": "ablation"}],
                       checks=[{"check": "drift.share", "explainer": "abl2"}])
    err = _refused([*run, str(renamed)], capsys, out)
    assert "the baseline, which has no explanation by that id (it has abl)" in err
    new_relative = ws.suite("new", checks=[{"check": "performance.mae", "id": "mae_rel",
                                            "gate": {"threshold": 5,
                                                     "relative_to": "baseline"}}])
    err = _refused([*run, str(new_relative)], capsys, out)
    assert "gates relative to the baseline's value of 'mae_rel'" in err


def test_an_older_results_schema_or_a_missing_folder_is_refused(
        ws: Workspace, approved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = ws.root / "old"
    shutil.copytree(approved, old)
    document = json.loads((old / "results.json").read_text())
    document["schema_version"] = 1
    (old / "results.json").write_text(json.dumps(document))
    out = ws.root / "refused"
    suite = str(ws.suite("approved"))
    err = _refused(["run", "-q", suite, "--out", str(out), "--baseline", str(old)], capsys, out)
    assert "results schema version 1" in err
    assert f"baseline {old}" in err
    err = _refused(["run", "-q", suite, "--out", str(out), "--baseline", str(ws.root / "nope")],
                   capsys, out)
    assert "holds no results.json" in err
    assert main(["diff", str(old), str(approved)]) == 4


def test_a_received_baseline_is_read_as_inert_schema_checked_data(
        ws: Workspace, approved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A baseline is a results folder from someone else: read by the reader ``xaudit report``
    uses (schema-checked, no link inside followed), refused (exit 4) before any work."""
    suite = str(ws.suite("approved"))
    out = ws.root / "refused"
    forged = ws.root / "forged"
    shutil.copytree(approved, forged)
    document = json.loads((forged / "results.json").read_text())
    document["checks"][0]["value"] = {"$float": "__import__('os')"}
    (forged / "results.json").write_text(json.dumps(document))
    err = _refused(["run", "-q", suite, "--out", str(out), "--baseline", str(forged)],
                   capsys, out)
    assert f"baseline {forged}" in err
    assert "checks.0.value" in err
    assert "Traceback" not in err
    linked = ws.root / "linked"
    linked.mkdir()
    (linked / "arrays.npz").write_bytes((approved / "arrays.npz").read_bytes())
    (linked / "results.json").symlink_to(approved / "results.json")
    err = _refused(["run", "-q", suite, "--out", str(out), "--baseline", str(linked)],
                   capsys, out)
    assert f"baseline {linked}" in err
    assert "link" in err


def test_diff_writes_the_comparison_without_rerunning(
        ws: Workspace, approved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    candidate = ws.root / "candidate"
    assert main(["run", "-q", str(ws.suite("candidate", "shuffled")), "--out",
                 str(candidate)]) == 1  # its R² fails; drift is skipped without a baseline
    capsys.readouterr()
    before, written = digest(approved), digest(candidate)
    assert main(["diff", str(approved), str(candidate)]) == 0
    stdout = capsys.readouterr().out
    assert digest(approved) == before
    assert set(digest(candidate)) == {*written, "comparison.json"}
    comparison = json.loads((candidate / "comparison.json").read_text())
    assert f"comparison written to {candidate / 'comparison.json'}" in stdout
    base, now = AuditResult.load(approved), AuditResult.load(candidate)
    a = np.abs(base.explanations["abl"].values[..., 0]).mean(axis=0)
    b = np.abs(now.explanations["abl"].values[..., 0]).mean(axis=0)
    rho = next(f for f in comparison["drift"] if f["check"] == "drift.rank_correlation")
    assert rho["value"] == pytest.approx(stats.spearmanr(a, b).statistic)
    assert "drift.rank_correlation@abl" in stdout
    r2 = next(g for g in comparison["gates"] if g["name"] == "performance.r2")
    assert r2["value_after"] == pytest.approx(shuffled_r2())
    elsewhere = ws.root / "diffs"
    assert main(["diff", str(approved), str(candidate), "--out", str(elsewhere)]) == 0
    assert (elsewhere / "comparison.json").is_file()
    assert main(["diff", str(approved), str(candidate), "--out", str(approved)]) == 4
    assert "never writes into the baseline folder" in capsys.readouterr().err
    assert digest(approved) == before


def test_a_run_never_replaces_the_baseline_it_compares_with(
        ws: Workspace, approved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = digest(approved)
    link = ws.root / "link-to-approved"
    link.symlink_to(approved, target_is_directory=True)
    for out in (approved, link):
        code = main(["run", "-q", str(ws.suite("candidate", "shuffled")), "--out", str(out),
                     "--baseline", str(approved)])
        assert code == 4
        assert "is the baseline's" in capsys.readouterr().err
    assert digest(approved) == before


def shuffled_r2() -> float:
    """The held-out R² of the ``shuffled`` factory's model, refitted with scikit-learn on the
    suite's split (seed 3, a quarter held out)."""
    X, y = load_diabetes(return_X_y=True)
    train, test = split_rows(len(y), 0.25, rng_for(derive_seed(3, "data", "split")))
    model = LinearRegression().fit(X[train], np.random.default_rng(0).permutation(y[train]))
    return float(r2_score(y[test], model.predict(X[test])))


# --- the governance example ------------------------------------------------------------------


@pytest.mark.slow
def test_the_governance_example_fails_each_candidate_for_its_cause(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    approved = tmp_path / "approved"
    assert main(["run", "-q", str(EXAMPLE / "approved.yaml"), "--out", str(approved)]) == 0
    failed: dict[str, dict[str, str]] = {}
    for candidate in ("shuffled", "leak", "stumps"):
        out = tmp_path / candidate
        code = main(["run", "-q", str(EXAMPLE / f"{candidate}.yaml"), "--out", str(out),
                     "--baseline", str(approved)])
        assert code == 1, candidate
        failed[candidate] = {c.name: c.verdict() for c in AuditResult.load(out).checks
                             if c.status == "fail"}
    capsys.readouterr()
    assert {"performance.r2", "r2_vs_approved"} <= set(failed["shuffled"])
    assert "R² on 110 held-out rows is -0.29" in failed["shuffled"]["performance.r2"]
    leak = failed["leak"]
    assert "performance.r2" not in leak
    assert "r2_vs_approved" not in leak
    assert "followup_lab holds 88% of all attribution" in leak["concentration@treeshap"]
    assert "followup_lab now holds 88% of attribution; it was absent in the approved run" in (
        leak["drift.share@treeshap"])
    assert "followup_lab entered the top 3" in leak["drift.top_k@treeshap"]
    stumps = failed["stumps"]
    assert not any(name.startswith(("performance", "r2_")) for name in stumps)
    assert any(name.startswith("drift.") for name in stumps)
    assert all("stability" not in name for names in failed.values() for name in names)
    assert main(["diff", str(approved), str(tmp_path / "stumps")]) == 0
    assert time.perf_counter() - started < 120


def test_the_candidate_suites_differ_from_the_approved_one_only_where_they_must() -> None:
    approved = yaml.safe_load((EXAMPLE / "approved.yaml").read_text())
    for candidate in ("shuffled", "leak", "stumps"):
        suite = yaml.safe_load((EXAMPLE / f"{candidate}.yaml").read_text())
        factory = "shuffled_labels" if candidate == "shuffled" else candidate
        assert suite["model"].pop("factory") == f"models:{factory}"
        assert suite.pop("baseline") is not None
        assert suite["report"].pop("out_dir") == f"../../out/governance/{candidate}"
        assert suite["documentation"].pop("status") == "draft"
        if candidate == "leak":
            assert suite["data"] == {**approved["data"], "source": "followup.csv",
                                     "target": "progression"}
            suite["data"] = approved["data"]
        expected = {**approved, "model": {k: v for k, v in approved["model"].items()
                                          if k != "factory"},
                    "report": {k: v for k, v in approved["report"].items() if k != "out_dir"},
                    "documentation": {k: v for k, v in approved["documentation"].items()
                                      if k not in ("status", "approved_by")}}
        assert suite == expected, candidate


def test_the_leak_data_is_what_the_example_generates(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import models  # the example's own module

    try:
        written = models.write_followup_data(tmp_path / "followup.csv")
        assert written.read_bytes() == (EXAMPLE / "followup.csv").read_bytes()
    finally:
        sys.modules.pop("models", None)
