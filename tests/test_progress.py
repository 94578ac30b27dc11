"""Progress lines, logging, -v/-q, --version and broken pipes of the command line."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import xaudit
from xaudit.cli import main
from xaudit.progress import Progress, rows_done


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_outside_a_terminal_a_line_every_interval_with_rows_and_eta() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream=stream, tty=False, interval=5.0, clock=clock)
    with progress.task("[explainer 1/2] ks (shap.kernel)", 40):
        clock.now += 1.0
        rows_done(4)  # within the interval: no line
        clock.now += 9.0
        rows_done(6)  # 10 of 40 rows in 10 s: 30 s left at that pace
        clock.now += 2.0
        rows_done(30)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "xaudit: [explainer 1/2] ks (shap.kernel): started (40 rows)",
        "xaudit: [explainer 1/2] ks (shap.kernel): 10/40 rows, 10.0 s, ETA 30 s",
        "xaudit: [explainer 1/2] ks (shap.kernel): done in 12.0 s",
    ]
    rows_done(5)  # no task open: nothing happens
    assert stream.getvalue().splitlines() == lines


def test_in_a_terminal_one_line_is_rewritten() -> None:
    stream, clock = io.StringIO(), Clock()
    with Progress(stream=stream, tty=True, clock=clock).task("lime", 4):
        clock.now += 2.0
        rows_done(1)
    text = stream.getvalue()
    assert text.count("\n") == 1
    assert text.endswith("lime: done in 2.0 s\n")
    assert "\r\033[Klime: 1/4 rows, 2.0 s, ETA 6 s" in text


@pytest.mark.parametrize("method", ["shap.kernel", "shap.permutation", "lime.tabular"])
def test_row_wise_explainers_report_every_row(method: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 4))
    model = xaudit.adapt(lambda rows: rows @ np.arange(1.0, 5.0), feature_shape=[4])
    stream = io.StringIO()
    with Progress(stream=stream, tty=False, interval=0.0).task(method, len(X)):
        xaudit.explain(model, X, method=method, background=X, n_samples=64)
    assert "7/7 rows" in stream.getvalue()


def test_explain_progress_true_writes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    X = np.random.default_rng(1).normal(size=(3, 3))
    model = xaudit.adapt(lambda rows: rows.sum(axis=1), feature_shape=[3])
    xaudit.explain(model, X, method="shap.kernel", background=X, n_samples=16, progress=True)
    err = capsys.readouterr().err
    assert "shap.kernel: started (3 rows)" in err
    assert "shap.kernel: done in" in err


def suite(tmp_path: Path) -> Path:
    rows = np.random.default_rng(0).normal(size=(12, 3))
    np.savez(tmp_path / "data.npz", X=rows, y=rows.sum(axis=1))
    (tmp_path / "progress_models.py").write_text(
        "def linear(data):\n    return lambda X: X.sum(axis=1)\n")
    document = {"name": "progress", "seed": 1, "model": {"factory": "progress_models:linear"},
                "data": {"source": "data.npz", "explain": {"n": 3}, "background": {"n": 4}},
                "explainers": [{"id": "ks", "method": "shap.kernel",
                                "params": {"n_samples": 16}},
                               {"id": "abl", "method": "ablation"}],
                "checks": [{"check": "completeness", "explainer": "ks",
                            "gate": {"threshold": 1e-6}}],
                "report": {"formats": ["json"]}}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_run_names_each_explainer_and_check_and_logs_with_v(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = suite(tmp_path)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "-v"]) == 0
    err = capsys.readouterr().err
    assert "[explainer 1/2] ks (shap.kernel): started (3 rows)" in err
    assert "[explainer 2/2] abl (ablation): done in" in err
    assert "[check 1/1] completeness@ks (completeness): done in" in err
    assert "xaudit: INFO: [explainer 1/2] ks (shap.kernel): explaining 3 rows" in err
    assert main(["-q", "run", str(path), "--out", str(tmp_path / "out2")]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert "PASS" in quiet.out
    logging.getLogger("xaudit").setLevel(logging.NOTSET)


@pytest.mark.parametrize("command", ["run", "validate", "plugins", "explain", "report", "diff",
                                     "verify", "keygen", "new-plugin"])
def test_every_command_takes_v_and_q(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "-q", "--help"]) == 0
    usage = capsys.readouterr().out
    assert "-v, --verbose" in usage
    assert "-q, --quiet" in usage


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"xaudit {xaudit.__version__}"


def test_a_closed_pipe_ends_quietly() -> None:
    reader = subprocess.Popen([sys.executable, "-m", "xaudit", "plugins"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None
    assert reader.stderr is not None
    reader.stdout.close()  # as `| head` does once it has read enough
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=120) == 0
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
