"""The CI integrations run as CI would run them: the GitHub action, the GitLab template and
the pre-commit hook.

Each file is parsed as YAML and its shell lines are executed with bash in a temporary
workspace, with the environment variables GitHub or GitLab would set, against a cheap suite
(a linear model on scikit-learn's diabetes data, ablation, a completeness gate). What the
steps leave (the job summary, the step outputs, the exit status) is compared with what the
audit itself wrote and with the exit code the ``xaudit`` command gives for the same suite.
Steps that are other actions (``actions/setup-python``, ``actions/upload-artifact``) are
stood in for: Python is this interpreter, and an upload copies the folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / ".github" / "actions" / "xaudit" / "action.yml"
GITLAB = ROOT / "ci" / "gitlab" / "xaudit.gitlab-ci.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")

MODELS = '''\
from sklearn.linear_model import LinearRegression


def linear(data):
    return LinearRegression().fit(data.X_train, data.y_train)
'''


def suite_text(threshold: float) -> str:
    return yaml.safe_dump({
        "name": "ci-gate",
        "seed": 1,
        "model": {"factory": "ci_models:linear"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 4}, "background": {"n": 8}},
        "explainers": [{"id": "abl", "method": "ablation"}],
        "checks": [{"check": "completeness", "explainer": "abl",
                    "gate": {"threshold": threshold}}],
        "report": {"formats": ["json", "html", "pdf", "md", "junit"]},
    }, sort_keys=False)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A repository checkout: a passing and a failing suite beside their model factory.

    A linear model is exactly additive, so ablation's completeness error is ~1e-13: a gate at
    1e-6 passes and one at -1 (no error is below zero) fails.
    """
    checkout = tmp_path / "checkout"  # the runner's own files go beside it, in tmp_path
    checkout.mkdir()
    (checkout / "ci_models.py").write_text(MODELS)
    (checkout / "pass.yaml").write_text(suite_text(1e-6))
    (checkout / "fail.yaml").write_text(suite_text(-1.0))
    return checkout


def bash(script: str, cwd: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run ``script`` as GitHub's ``shell: bash`` and GitLab's runner do (``-eo pipefail``),
    with positional arguments ``args``; returns the exit status and what it printed."""
    path = cwd.parent / f"step-{abs(hash(script))}.sh"
    path.write_text(script)
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    sys.stderr.write(done.stderr)
    return done.returncode, done.stdout


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("XAUDIT_CACHE", None)
    env.update(extra)
    return env


# --- GitHub: the composite action ------------------------------------------------------------


@dataclass
class GitHubJob:
    """A stand-in runner for a composite action's steps."""

    workspace: Path
    inputs: dict[str, str]
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    uploaded: dict[str, Path] = field(default_factory=dict)
    pip_calls: list[str] = field(default_factory=list)
    failed_with: int | None = None

    def context(self) -> dict[str, str]:
        return {"github.action_path": str(ACTION.parent), "github.server_url": "https://gh.test",
                "github.repository": "acme/models", "github.run_id": "42"}

    def evaluate(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("inputs."):
                return self.inputs[expression.removeprefix("inputs.")]
            if expression.startswith("steps."):
                _, step, _, name = expression.split(".", 3)
                return self.outputs.get(step, {}).get(name, "")
            return self.context()[expression]

        return EXPRESSION.sub(value, text)

    def run(self, action: dict[str, Any]) -> None:
        summary = self.workspace.parent / "step_summary.md"
        summary.write_text("")
        stub = self.workspace.parent / "stub-bin"
        stub.mkdir(exist_ok=True)
        log = self.workspace.parent / "pip.log"
        (stub / "python").write_text(f'#!/usr/bin/env bash\necho "$*" >> "{log}"\n')
        (stub / "python").chmod(0o755)
        for step in action["runs"]["steps"]:
            condition = step.get("if", "success()")
            if self.failed_with is not None and "always()" not in condition:
                continue
            if "uses" in step:
                self.uses(step)
                continue
            assert not EXPRESSION.search(step["run"]), "inputs must reach scripts through env"
            output = self.workspace.parent / f"output-{step.get('id', 'step')}"
            output.write_text("")
            env = base_env(GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary),
                           GITHUB_WORKSPACE=str(self.workspace), GITHUB_ACTIONS="true", CI="true",
                           **{k: self.evaluate(str(v)) for k, v in step.get("env", {}).items()})
            if step["name"] == "Install xaudit":  # pip is stood in for: record what it was asked
                env["PATH"] = f"{stub}{os.pathsep}{env['PATH']}"
            code, _ = bash(step["run"], self.workspace, env)
            if "id" in step:
                self.outputs[step["id"]] = dict(
                    line.split("=", 1) for line in output.read_text().splitlines() if line)
            if code != 0:
                self.failed_with = code
        self.pip_calls = log.read_text().splitlines() if log.exists() else []

    def uses(self, step: dict[str, Any]) -> None:
        action = step["uses"].split("@")[0]
        assert action in ("actions/setup-python", "actions/upload-artifact"), action
        if action == "actions/upload-artifact":
            with_ = {k: self.evaluate(str(v)) for k, v in step["with"].items()}
            target = self.workspace.parent / "artifacts" / with_["name"]
            if (self.workspace / with_["path"]).is_dir():  # else upload-artifact only warns
                shutil.copytree(self.workspace / with_["path"], target)
                self.uploaded[with_["name"]] = target
            self.outputs[step["id"]] = {"artifact-url": "https://gh.test/artifacts/7"}


def action_inputs(**given: str) -> dict[str, str]:
    declared = yaml.safe_load(ACTION.read_text())["inputs"]
    missing = [name for name, spec in declared.items() if spec.get("required")
               and name not in given]
    assert not missing, f"required inputs not given: {missing}"
    return {name: given.get(name, str(spec.get("default", ""))) for name, spec in
            declared.items()}


@pytest.mark.parametrize(("suite", "expected"), [("pass.yaml", 0), ("fail.yaml", 1)])
def test_github_action_runs_the_audit_and_fails_with_its_exit_code(
        workspace: Path, suite: str, expected: int) -> None:
    action = yaml.safe_load(ACTION.read_text())
    job = GitHubJob(workspace, action_inputs(suite=suite, args="--fail-on-warn"))
    job.run(action)
    assert job.pip_calls == [f"-m pip install --disable-pip-version-check {ROOT}[sklearn]"]
    assert job.outputs["audit"]["exit-code"] == str(expected)
    assert (job.failed_with or 0) == expected  # the last step fails the job with that code
    folder = job.uploaded["xaudit-results"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "arrays.npz", "junit.xml", "manifest.json", "report.html", "results.json",
        "summary.md"]  # the formats input chose them: no PDF on a PR build
    shown = (workspace.parent / "step_summary.md").read_text()
    written = (workspace / "xaudit-results" / "summary.md").read_text()
    assert shown.rstrip("\n") == written.replace(
        "{{REPORT_URL}}", "https://gh.test/artifacts/7").rstrip("\n")
    assert ("PASSED" if expected == 0 else "FAILED") in shown.splitlines()[0]


def test_github_action_reports_an_invalid_suite(workspace: Path) -> None:
    action = yaml.safe_load(ACTION.read_text())
    job = GitHubJob(workspace, action_inputs(suite="missing.yaml"))
    job.run(action)
    assert job.failed_with == 4
    assert "wrote no summary.md (exit code 4)" in (workspace.parent / "step_summary.md").read_text()


def approved_run(workspace: Path) -> str:
    """The approved run's results folder, saved in the checkout as a team would keep it."""
    code, _ = bash("xaudit run -q pass.yaml --out approved --formats json,md", workspace,
                   base_env())
    assert code == 0
    return "approved"


def test_github_action_compares_with_the_baseline_it_is_given(workspace: Path) -> None:
    action = yaml.safe_load(ACTION.read_text())
    job = GitHubJob(workspace, action_inputs(suite="pass.yaml", baseline=approved_run(workspace),
                                             formats="json,md,junit"))
    job.run(action)
    assert job.outputs["audit"]["exit-code"] == "0"
    folder = job.uploaded["xaudit-results"]
    comparison = json.loads((folder / "comparison.json").read_text())
    assert comparison["baseline"]["suite_name"] == "ci-gate"
    shown = (workspace.parent / "step_summary.md").read_text()
    assert "change against the approved run" in shown  # the same model: +0 points everywhere
    assert "(+0 points;" in shown
    assert "in the approved run)" in shown


# --- GitLab: the CI template -----------------------------------------------------------------


def test_gitlab_template_publishes_junit_and_fails_with_the_exit_code(workspace: Path) -> None:
    template = yaml.safe_load(GITLAB.read_text())
    job = template[".xaudit"]
    assert job["artifacts"]["reports"]["junit"] == "$XAUDIT_OUT/junit.xml"
    assert job["artifacts"]["paths"] == ["$XAUDIT_OUT"]
    assert job["artifacts"]["when"] == "always"
    stub = workspace.parent / "stub-bin"
    stub.mkdir()
    log = workspace.parent / "pip.log"
    (stub / "python").write_text(f'#!/usr/bin/env bash\necho "$*" >> "{log}"\n')
    (stub / "python").chmod(0o755)
    for suite, expected in (("pass.yaml", 0), ("fail.yaml", 1)):
        variables = {**{k: str(v) for k, v in job["variables"].items()},
                     "XAUDIT_SUITE": suite, "XAUDIT_OUT": f"out-{expected}",
                     "XAUDIT_FORMATS": "json,md,junit"}
        env = base_env(CI="true", GITLAB_CI="true", CI_PROJECT_DIR=str(workspace),
                       CI_JOB_URL="https://gl.test/acme/models/-/jobs/9", **variables)
        stubbed = {**env, "PATH": f"{stub}{os.pathsep}{env['PATH']}"}
        assert bash("\n".join(job["before_script"]), workspace, stubbed)[0] == 0
        code, printed = bash("\n".join(job["script"]), workspace, env)
        assert code == expected
        junit = (workspace / f"out-{expected}" / "junit.xml").read_text()
        assert ('type="GateFailed"' in junit) == (expected == 1)
        written = (workspace / f"out-{expected}" / "summary.md").read_text()
        link = f"https://gl.test/acme/models/-/jobs/9/artifacts/browse/out-{expected}"
        assert written.replace("{{REPORT_URL}}", link).rstrip("\n") in printed
        assert "{{REPORT_URL}}" not in printed
    assert log.read_text().splitlines() == ["-m pip install --disable-pip-version-check "
                                            "xaudit[sklearn]"] * 2
    variables = {**{k: str(v) for k, v in job["variables"].items()},
                 "XAUDIT_SUITE": "pass.yaml", "XAUDIT_OUT": "out-baseline",
                 "XAUDIT_FORMATS": "json,md,junit", "XAUDIT_BASELINE": approved_run(workspace)}
    env = base_env(CI="true", GITLAB_CI="true", CI_PROJECT_DIR=str(workspace),
                   CI_JOB_URL="https://gl.test/acme/models/-/jobs/9", **variables)
    code, printed = bash("\n".join(job["script"]), workspace, env)
    assert code == 0
    assert (workspace / "out-baseline" / "comparison.json").is_file()
    assert "change against the approved run" in printed


# --- pre-commit ------------------------------------------------------------------------------


def test_pre_commit_hook_validates_the_suites_it_is_given(workspace: Path) -> None:
    (hook,) = yaml.safe_load(HOOKS.read_text())
    pattern = re.compile(hook["files"])
    assert pattern.search("examples/diabetes/audit.yaml")
    assert pattern.search("suite.yml")
    assert not pattern.search(".github/actions/xaudit/action.yml")
    (workspace / "broken-suite.yaml").write_text(
        suite_text(1e-6).replace("method: ablation", "method: ablaton"))
    command = f"{hook['entry']} \"$@\""
    env = base_env()
    assert bash(command, workspace, env, "pass.yaml", "fail.yaml")[0] == 0
    code, printed = bash(command, workspace, env, "pass.yaml", "broken-suite.yaml")
    assert code == 4
    assert "pass.yaml: valid" in printed
