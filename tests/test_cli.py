"""The ``xaudit`` command in-process: exit codes 0/1/3/4/5, warnings, quiet mode, subcommands.

Suites use a ``factory:`` in a module written next to them that trains a scikit-learn model on
``data.X_train``/``data.y_train`` in milliseconds and keeps the fitted estimator, so the numbers
in the results can be checked against scikit-learn's own predictions (closed forms for a linear
model, brute-force ablation for a tree), not against xaudit's output.
"""

from __future__ import annotations

import io
import json
import re
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_diabetes

from xaudit.cli import main
from xaudit.results import AuditResult

MODELS = '''\
"""Model factories for the CLI tests: fitted in milliseconds, kept for the oracles."""

from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeRegressor

FITTED = []


def linear(data):
    model = LinearRegression().fit(data.X_train, data.y_train)
    FITTED.append((model, data.X_train.shape))
    return model


def tree(data):
    model = DecisionTreeRegressor(max_depth=4, random_state=0).fit(data.X_train, data.y_train)
    FITTED.append((model, data.X_train.shape))
    return model
'''

PLUGIN = '''\
"""A test plugin: one explainer that crashes, one that gives no base values."""

import numpy as np

from xaudit import Attribution, Explainer, hookimpl


class Boom(Explainer):
    name = "test.boom"

    def explain(self, model, X, *, background, targets, rng):
        raise RuntimeError("kaboom from the test plugin")


class NoBase(Explainer):
    name = "test.nobase"

    def explain(self, model, X, *, background, targets, rng):
        return Attribution(values=np.zeros((X.shape[0], X.shape[1], targets.n_slots)))


@hookimpl
def xaudit_register_explainers(registry):
    registry.add(Boom)
    registry.add(NoBase)
'''

@dataclass
class Workspace:
    """A folder with a factory module (and a plugin module) on ``sys.path``."""

    root: Path
    models: str
    plugin: str

    def module(self) -> ModuleType:
        return sys.modules[self.models]

    def fitted(self) -> Any:
        """The estimator the last factory call trained."""
        model, shape = self.module().FITTED[-1]
        return model, shape

    def suite(self, name: str, factory: str = "linear", explainers: Sequence[dict[str, Any]] = (),
              checks: Sequence[dict[str, Any]] = (), **extra: Any) -> Path:
        document: dict[str, Any] = {
            "name": name,
            "seed": 3,
            "model": {"factory": f"{self.models}:{factory}"},
            "data": {"source": "sklearn:diabetes", "explain": {"n": 6},
                     "background": {"n": 12}},
            "explainers": list(explainers) or [{"id": "abl", "method": "ablation"}],
            "checks": list(checks),
            "report": {"formats": ["json", "md", "junit"]},
            **extra,
        }
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    tag = uuid.uuid4().hex
    workspace = Workspace(tmp_path, f"xaudit_cli_models_{tag}", f"xaudit_cli_plugin_{tag}")
    (tmp_path / f"{workspace.models}.py").write_text(MODELS)
    (tmp_path / f"{workspace.plugin}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield workspace
    sys.modules.pop(workspace.models, None)
    sys.modules.pop(workspace.plugin, None)


def status_of(argv: Sequence[str]) -> int:
    """The exit status a shell would see: ``main``'s return value or its SystemExit code."""
    try:
        return main(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def gated(explainer: str = "abl", threshold: float = 1e-8, **gate: Any) -> dict[str, Any]:
    return {"check": "completeness", "explainer": explainer,
            "gate": {"threshold": threshold, **gate}}


def rows_used(result: AuditResult) -> tuple[np.ndarray, np.ndarray]:
    """Explained rows and background rows, taken from scikit-learn's copy of the data."""
    X, _ = load_diabetes(return_X_y=True)
    explained = np.asarray(result.data["explain_rows"])
    background = np.asarray(result.data["sampling"]["background"]["rows"])
    return X[explained], X[background]


def brute_force_ablation(predict: Any, x: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, float]:
    """phi_i(x) = f(x) - mean_b f(x with x_i := b_i), and the base value mean_b f(b)."""
    fx = predict(x[None, :])[0]
    phi = np.empty(x.size)
    for i in range(x.size):
        perturbed = np.repeat(x[None, :], bg.shape[0], axis=0)
        perturbed[:, i] = bg[:, i]
        phi[i] = fx - predict(perturbed).mean()
    return phi, float(predict(bg).mean())


# --- exit 0: every gate passes ------------------------------------------------------------------


def test_exit_0_linear_model_ablation_is_exact(ws: Workspace,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "out"
    suite = ws.suite("linear-pass", checks=[gated(threshold=1e-8)])
    assert main(["run", "-q", str(suite), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "OK (exit 0)" in stdout
    result = AuditResult.load(out)
    model, train_shape = ws.fitted()
    assert train_shape[0] == result.data["n_train"]
    x, bg = rows_used(result)
    np.testing.assert_array_equal(result.explanations["abl"].inputs, x)
    # closed form for a linear model: phi_i = w_i (x_i - mean_b b_i); base = mean_b f(b)
    expected = model.coef_[None, :] * (x - bg.mean(axis=0))
    values = result.explanations["abl"].values
    assert values.shape == (6, 10, 1)
    np.testing.assert_allclose(values[..., 0], expected, rtol=1e-9, atol=1e-9)
    base = result.explanations["abl"].base_values
    assert base is not None
    np.testing.assert_allclose(base[:, 0], model.predict(bg).mean(), rtol=1e-12)
    (check,) = result.checks
    assert check.status == "pass"
    assert check.value is not None
    assert check.value <= 1e-8


# --- exit 1: a gate fails -----------------------------------------------------------------------


def test_exit_1_tree_is_not_additive(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "out"
    suite = ws.suite("tree-fail", factory="tree", checks=[gated(threshold=1e-9)])
    assert main(["run", "-q", str(suite), "--out", str(out)]) == 1
    assert "GATE_FAILED (exit 1)" in capsys.readouterr().out
    result = AuditResult.load(out)
    model, _ = ws.fitted()
    x, bg = rows_used(result)
    errors = []
    for r in range(x.shape[0]):
        phi, base = brute_force_ablation(model.predict, x[r], bg)
        np.testing.assert_allclose(result.explanations["abl"].values[r, :, 0], phi,
                                   rtol=1e-9, atol=1e-9)
        errors.append(abs(phi.sum() + base - model.predict(x[r][None, :])[0]))
    (check,) = result.checks
    assert max(errors) > 1e-9  # the oracle agrees that the gate must fail
    assert check.status == "fail"
    assert check.value == pytest.approx(max(errors), rel=1e-9, abs=1e-9)
    assert check.threshold == 1e-9


# --- exit 3: something crashed, the rest still ran ----------------------------------------------


def test_exit_3_explainer_crash_keeps_other_results(ws: Workspace,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "out"
    suite = ws.suite(
        "crash",
        explainers=[{"id": "boom", "method": "test.boom"}, {"id": "abl", "method": "ablation"}],
        checks=[gated("abl"), gated("boom")],
    )
    assert main(["-p", ws.plugin, "run", "-q", str(suite), "--out", str(out)]) == 3
    stdout = capsys.readouterr().out
    assert "CRASHED (exit 3)" in stdout
    assert "kaboom from the test plugin" in stdout
    document = json.loads((out / "results.json").read_text())
    assert document["exit_code"] == 3
    error = document["explainer_errors"]["boom"]
    assert error["type"] == "RuntimeError"
    assert error["message"] == "kaboom from the test plugin"
    assert "Traceback (most recent call last)" in error["traceback"]
    assert 'raise RuntimeError("kaboom from the test plugin")' in error["traceback"]
    assert list(document["explanations"]) == ["abl"]  # the other explainer's results are there
    statuses = {c["name"]: c["status"] for c in document["checks"]}
    assert statuses == {"completeness@abl": "pass", "completeness@boom": "error"}
    result = AuditResult.load(out)
    assert result.explanations["abl"].values.shape == (6, 10, 1)
    assert (out / "junit.xml").is_file()
    assert (out / "summary.md").is_file()


def test_exit_3_check_crash_is_recorded(ws: Workspace) -> None:
    out = ws.root / "out"
    suite = ws.suite(
        "check-crash",
        explainers=[{"id": "nobase", "method": "test.nobase"}],
        checks=[gated("nobase")],
    )
    assert main(["-p", ws.plugin, "run", "-q", str(suite), "--out", str(out)]) == 3
    document = json.loads((out / "results.json").read_text())
    assert document["explainer_errors"] == {}
    (check,) = document["checks"]
    assert check["status"] == "error"
    assert check["error"]["type"] == "InputError"
    assert "base values" in check["error"]["message"]
    assert "Traceback (most recent call last)" in check["error"]["traceback"]


# --- exit 4: invalid suite, inputs or usage; nothing run -----------------------------------------


def test_exit_4_invalid_suite_run_and_validate(ws: Workspace,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "out"
    suite = ws.suite("typo", explainers=[{"id": "abl", "method": "ablaton"}])
    assert main(["validate", str(suite)]) == 4
    assert main(["run", "-q", str(suite), "--out", str(out)]) == 4
    assert not out.exists()
    err = capsys.readouterr().err
    assert err.count("explainers[0].method: unknown explainer 'ablaton'; "
                     "did you mean 'ablation'?") == 2


@pytest.mark.parametrize("argv", [["bogus"], [], ["run"], ["run", "s.yaml", "--frobnicate"]],
                         ids=["unknown-subcommand", "no-subcommand", "missing-suite",
                              "unknown-option"])
def test_exit_4_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert status_of(argv) == 4
    assert "usage: xaudit" in capsys.readouterr().err


def test_exit_4_bad_inputs_found_before_running(ws: Workspace,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "out"
    missing_data = ws.suite("nodata", data={"source": "missing.csv"})
    assert main(["run", "-q", str(missing_data), "--out", str(out)]) == 4
    missing_factory = ws.suite("nofactory", factory="no_such_function")
    assert main(["run", "-q", str(missing_factory), "--out", str(out)]) == 4
    outside_pool = ws.suite("outside", data={"source": "sklearn:diabetes",
                                             "explain": {"rows": [100000]}})
    assert main(["run", "-q", str(outside_pool), "--out", str(out)]) == 4
    assert not out.exists()
    err = capsys.readouterr().err
    assert "data.source: " in err
    assert "missing.csv" in err
    assert "no_such_function" in err
    assert "data.explain.rows: " in err


def test_usage_error_is_returned_not_raised() -> None:
    assert main(["bogus"]) == 4


def test_unknown_target_is_an_invalid_suite(ws: Workspace,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "out"
    suite = ws.suite("target", explainers=[{"id": "abl", "method": "ablation",
                                            "target": "no_such_output"}])
    assert main(["run", "-q", str(suite), "--out", str(out)]) == 4
    assert not out.exists()
    assert "explainers[0].target" in capsys.readouterr().err


def test_report_on_missing_folder_is_a_usage_error(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "never-written")]) == 4
    assert "Traceback" not in capsys.readouterr().err


# --- exit 5: nothing failed but no gate was evaluated -------------------------------------------


def test_exit_5_checks_without_gate(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "out"
    suite = ws.suite("ungated", checks=[{"check": "completeness", "explainer": "abl"}])
    assert main(["run", "-q", str(suite), "--out", str(out)]) == 5
    assert "NO_GATES (exit 5)" in capsys.readouterr().out
    (check,) = AuditResult.load(out).checks
    assert check.status == "not_gated"
    assert check.value is not None  # the check still measured its value
    assert check.value < 1e-8


def test_exit_5_no_checks(ws: Workspace) -> None:
    out = ws.root / "out"
    assert main(["run", "-q", str(ws.suite("nochecks")), "--out", str(out)]) == 5
    assert (out / "results.json").is_file()


# --- warnings and --fail-on-warn ----------------------------------------------------------------


@pytest.mark.parametrize(
    "gate",
    [{"threshold": 1e-9, "severity": "warn"}, {"threshold": 1e6, "warn_threshold": 1e-9}],
    ids=["severity-warn", "warn-threshold"],
)
def test_warn_fails_only_with_fail_on_warn(ws: Workspace, gate: dict[str, Any],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    suite = ws.suite("warn", factory="tree",
                     checks=[{"check": "completeness", "explainer": "abl", "gate": gate}])
    assert main(["run", "-q", str(suite), "--out", str(ws.root / "a")]) == 0
    assert "1 warned" in capsys.readouterr().out
    assert main(["run", "-q", "--fail-on-warn", str(suite), "--out", str(ws.root / "b")]) == 1
    assert "GATE_FAILED (exit 1)" in capsys.readouterr().out
    (check,) = AuditResult.load(ws.root / "b").checks
    assert check.status == "warn"


# --- quiet mode ---------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, where progress bars belong."""

    def isatty(self) -> bool:
        return True


def test_progress_bars_on_a_terminal_unless_quiet(ws: Workspace, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    suite = ws.suite("progress", checks=[gated()])
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["run", str(suite), "--out", str(ws.root / "loud")]) == 0
    assert "\r\033[K[explainer 1/1] abl (ablation): started (6 rows)" in terminal.getvalue()
    assert "\r\033[K[check 1/1] completeness@abl (completeness): done in" in terminal.getvalue()
    assert "OK (exit 0)" in capsys.readouterr().out
    quiet_terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet_terminal)
    assert main(["run", "-q", str(suite), "--out", str(ws.root / "quiet")]) == 0
    assert quiet_terminal.getvalue() == ""
    assert "OK (exit 0)" in capsys.readouterr().out  # the verdict is still printed


def test_plain_progress_lines_in_ci_logs(ws: Workspace,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Captured stderr is not a terminal: plain lines, no carriage-return bars."""
    suite = ws.suite("ci-log", checks=[gated()])
    assert main(["run", str(suite), "--out", str(ws.root / "out")]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err
    assert "xaudit: [explainer 1/1] abl (ablation): started (6 rows)\n" in captured.err
    assert captured.out.count("completeness@abl: PASS") == 1


# --- other subcommands --------------------------------------------------------------------------


def test_plugins_json_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    expected = {
        "xaudit.plugins.perturbation.ablation": ("explainers", ["ablation"]),
        "xaudit.plugins.checks.completeness": ("checks", ["completeness"]),
        "xaudit.adapters.sklearn.adapter": ("adapters", ["sklearn"]),
        "xaudit.adapters.callable": ("adapters", ["callable"]),
    }
    for name, (kind, registered) in expected.items():
        assert rows[name][kind] == registered
        assert rows[name]["distribution"] == "xaudit"
        assert rows[name]["version"]


def test_plugins_lists_a_plugin_given_with_p(ws: Workspace,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-p", ws.plugin, "plugins"]) == 0
    text = capsys.readouterr().out
    assert ws.plugin in text
    assert "test.boom" in text


def test_explain_prints_features_by_importance(ws: Workspace, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ws.root)
    out = ws.root / "explained"
    argv = ["explain", "--model", f"{ws.models}:linear", "--data", "sklearn:diabetes",
            "--method", "ablation", "--rows", "8", "--out", str(out)]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    names = load_diabetes().feature_names
    printed = re.findall(r"^\s+(\S+)\s+\S+$", stdout, flags=re.MULTILINE)
    assert sorted(printed) == sorted(names)
    # oracle: mean |w_i (x_i - mean_b b_i)| over the explained rows, from scikit-learn's fit
    result = AuditResult.load(out)
    model, _ = ws.fitted()
    x, bg = rows_used(result)
    assert x.shape[0] == 8
    importance = np.abs(model.coef_[None, :] * (x - bg.mean(axis=0))).mean(axis=0)
    assert printed == [names[i] for i in np.argsort(-importance)]


def test_report_rerenders_from_saved_results(ws: Workspace,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "out"
    suite = ws.suite("rerender", factory="tree", checks=[gated(threshold=1e-9)],
                     report={"formats": ["json"]})
    assert main(["run", "-q", str(suite), "--out", str(out)]) == 1
    assert not (out / "junit.xml").exists()
    capsys.readouterr()
    assert main(["report", str(out), "--formats", "md,junit"]) == 0
    listed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in listed) == ["junit.xml", "manifest.json", "summary.md"]
    case = ET.parse(out / "junit.xml").getroot().find("testsuite/testcase")
    assert case is not None
    assert case.find("failure") is not None
    summary = (out / "summary.md").read_text()
    assert "rerender" in summary
    assert "FAILED" in summary
    elsewhere = ws.root / "elsewhere"
    assert main(["report", str(out), "--formats", "junit", "--out", str(elsewhere)]) == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == ["junit.xml", "manifest.json"]
    assert main(["report", str(out), "--formats", "pdff"]) == 4


def test_factory_module_resolves_next_to_each_suite(tmp_path: Path) -> None:
    name = f"models_{uuid.uuid4().hex}"
    factories = {
        "a": "from sklearn.linear_model import LinearRegression as Model\n",
        "b": "from sklearn.tree import DecisionTreeRegressor as Model\n",
    }
    try:
        for folder, header in factories.items():
            (tmp_path / folder).mkdir()
            (tmp_path / folder / f"{name}.py").write_text(
                f"{header}\n\ndef train_{folder}(data):\n"
                "    return Model().fit(data.X_train, data.y_train)\n")
            (tmp_path / folder / "suite.yaml").write_text(yaml.safe_dump({
                "name": folder,
                "model": {"factory": f"{name}:train_{folder}"},
                "data": {"source": "sklearn:diabetes", "explain": {"n": 2},
                         "background": {"n": 3}},
                "explainers": [{"id": "abl", "method": "ablation"}],
            }))
            out = tmp_path / f"out-{folder}"
            assert main(["run", "-q", str(tmp_path / folder / "suite.yaml"),
                         "--out", str(out)]) == 5
        assert AuditResult.load(tmp_path / "out-a").model["name"] == "LinearRegression"
        assert AuditResult.load(tmp_path / "out-b").model["name"] == "DecisionTreeRegressor"
    finally:
        sys.modules.pop(name, None)
