"""MLflow: ``xaudit run --mlflow`` and ``log_audit`` against a real MLflow file store.

What MLflow stored is read back through MLflow's own client (metrics, tags, artifacts) and
compared with the results folder the run wrote (its ``results.json`` values, the SHA-256 of
its files by ``hashlib``). The store is a file store in a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

from xaudit.cli import main  # noqa: E402
from xaudit.integrations.mlflow import log_audit, metric_name  # noqa: E402
from xaudit.results import AuditResult  # noqa: E402

MODELS = '''\
from sklearn.tree import DecisionTreeRegressor


def tree(data):
    return DecisionTreeRegressor(max_depth=3, random_state=0).fit(data.X_train, data.y_train)
'''


@pytest.fixture(autouse=True)
def file_store_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow 3 keeps its file store only on request (it suggests SQLite for new servers)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mlflow-suite")
    (root / "mlflow_models.py").write_text(MODELS)
    path = root / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tracked", "seed": 6,
        "model": {"factory": "mlflow_models:tree"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 4}, "background": {"n": 8}},
        "explainers": [{"id": "abl", "method": "ablation"}],
        "checks": [{"check": "completeness", "explainer": "abl", "gate": {"threshold": 1e-9}},
                   {"id": "lenient", "check": "completeness", "explainer": "abl",
                    "gate": {"threshold": 1e6}}],
        "report": {"formats": ["json", "md", "junit"]},
    }))
    return path


def only_run(uri: str) -> Any:
    client = MlflowClient(tracking_uri=uri)
    runs = [run for experiment in client.search_experiments()
            for run in client.search_runs([experiment.experiment_id])]
    assert len(runs) == 1
    return runs[0]


def test_run_with_mlflow_logs_values_verdict_hashes_and_the_folder(
        suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = (tmp_path / "mlruns").as_uri()
    out = tmp_path / "out"
    assert main(["run", "-q", str(suite), "--out", str(out), "--mlflow-uri", uri]) == 1
    run = only_run(uri)
    assert f"logged to MLflow run {run.info.run_id}" in capsys.readouterr().out
    document = json.loads((out / "results.json").read_text())
    expected = {metric_name(c["name"]): c["value"] for c in document["checks"]}
    assert set(expected) == {"xaudit/completeness/abl", "xaudit/lenient"}
    for name, value in expected.items():
        assert run.data.metrics[name] == pytest.approx(value, rel=1e-12)
    assert run.data.metrics["xaudit/exit_code"] == 1
    tags = run.data.tags
    assert tags["xaudit.verdict"] == document["verdict"] == "FAILED"
    assert tags["xaudit.exit_code"] == "1"
    for what in ("suite", "model", "data"):
        assert tags[f"xaudit.{what}_sha256"] == document["provenance"]["hashes"][what]
    assert tags["xaudit.results_sha256"] == hashlib.sha256(
        (out / "results.json").read_bytes()).hexdigest()
    assert tags["xaudit.check.completeness_abl"].startswith("completeness@abl: FAIL value")
    assert run.info.status == "FINISHED"
    client = MlflowClient(tracking_uri=uri)
    listed = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "xaudit")}
    assert listed == {p.name for p in out.iterdir()}
    downloaded = Path(client.download_artifacts(run.info.run_id, "xaudit/results.json",
                                                str(tmp_path / "down")))
    assert downloaded.read_bytes() == (out / "results.json").read_bytes()


def test_log_audit_uses_the_active_run(suite: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert main(["run", "-q", str(suite), "--out", str(out)]) == 1
    result = AuditResult.load(out)
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(run_name="training") as active:
            mlflow.log_param("depth", 3)
            run_id = log_audit(result, out)
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    assert run_id == active.info.run_id
    run = only_run(uri)
    assert run.data.params == {"depth": "3"}
    assert run.data.tags["xaudit.verdict"] == "FAILED"


def test_mlflow_missing_is_refused_before_running(suite: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    out = tmp_path / "out"
    assert main(["run", "-q", str(suite), "--out", str(out), "--mlflow"]) == 4
    assert "pip install 'xaudit[mlflow]'" in capsys.readouterr().err
    assert not out.exists()
