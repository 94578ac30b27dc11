"""Log an audit to MLflow (the ``mlflow`` extra): ``xaudit run --mlflow`` and :func:`log_audit`.

What is logged, so a model registry's reviewer sees the audit beside the training run:

* metrics ``xaudit/<check>/<explainer>`` (a check's id: ``@`` becomes ``/``, other characters
  MLflow refuses become ``_``): every check's measured value, plus ``xaudit/exit_code``;
* tags ``xaudit.verdict``, ``xaudit.exit_code``, ``xaudit.fail_on_warn``, ``xaudit.suite``,
  ``xaudit.version``, the SHA-256 of the suite, model, data and ``results.json``
  (``xaudit.*_sha256``), and ``xaudit.check.<id>``: each check's verdict line (status, value,
  gate);
* the results folder (``results.json``, ``arrays.npz``, the report, ``summary.md``,
  ``junit.xml``, ``manifest.json``) as artifacts under ``xaudit/``.

It logs to the active MLflow run when there is one; otherwise it starts a run named after the
suite in ``experiment`` (``MLFLOW_EXPERIMENT_NAME``, else MLflow's ``Default``) on
``tracking_uri`` (``MLFLOW_TRACKING_URI``, else MLflow's default) and ends it. Nothing is
sent anywhere the tracking URI does not name.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..extras import import_from_extra
from ..manifest import file_sha256
from ..results import RESULTS_FILE, AuditResult
from ..verdict import VERDICTS

ARTIFACT_PATH = "xaudit"
_REFUSED = re.compile(r"[^\w./\- ]")


def require_mlflow() -> Any:
    """The ``mlflow`` module; :class:`~xaudit.extras.MissingExtraError` naming the ``mlflow``
    extra when it is not installed."""
    return import_from_extra("mlflow", "mlflow", "logging to MLflow (--mlflow)")


def metric_name(check_name: str) -> str:
    """The MLflow metric a check's value is logged as: ``xaudit/<check>/<explainer>``."""
    return "xaudit/" + _REFUSED.sub("_", check_name.replace("@", "/"))


def tags_of(result: AuditResult, out_dir: Path) -> dict[str, str]:
    """The tags :func:`log_audit` sets: verdict, hashes, versions and each check's verdict."""
    hashes = result.provenance.get("hashes", {})
    code = result.exit_code()
    results = Path(out_dir) / RESULTS_FILE
    tags = {
        "xaudit.verdict": VERDICTS[code],
        "xaudit.exit_code": str(int(code)),
        "xaudit.fail_on_warn": str(result.gate_policy.fail_on_warn).lower(),
        "xaudit.suite": result.suite_name,
        "xaudit.version": str(result.provenance.get("xaudit_version", "")),
        "xaudit.suite_sha256": str(hashes.get("suite", "")),
        "xaudit.model_sha256": str(hashes.get("model", "")),
        "xaudit.data_sha256": str(hashes.get("data", "")),
        "xaudit.results_sha256": file_sha256(results) if results.is_file() else "",
    }
    for check in result.checks:
        tags["xaudit.check." + _REFUSED.sub("_", check.name)] = check.verdict()
    return tags


def log_audit(result: AuditResult, out_dir: str | Path, *, tracking_uri: str | None = None,
              experiment: str | None = None) -> str:
    """Log ``result`` and its results folder ``out_dir`` to MLflow; returns the run id.

    See the module docstring for what is logged and where. Raises :class:`InputError` when
    MLflow is not installed or ``out_dir`` is not a folder.
    """
    mlflow = require_mlflow()
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"{out} is not a results folder; run the suite first")
    active = mlflow.active_run()
    if active is not None:
        client, run_id = MlflowClient(), active.info.run_id
    else:
        client = MlflowClient(tracking_uri=tracking_uri)
        run_id = client.create_run(_experiment_id(client, experiment),
                                   run_name=result.suite_name).info.run_id
    now = int(time.time() * 1000)
    values = {metric_name(c.name): c.value for c in result.checks if c.value is not None}
    values["xaudit/exit_code"] = float(int(result.exit_code()))
    client.log_batch(run_id,
                     metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
                     tags=[RunTag(k, v) for k, v in tags_of(result, out).items()])
    client.log_artifacts(run_id, str(out), artifact_path=ARTIFACT_PATH)
    if active is None:
        client.set_terminated(run_id)
    return str(run_id)


def _experiment_id(client: Any, name: str | None) -> str:
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"
    found = client.get_experiment_by_name(name)
    return str(found.experiment_id if found is not None else client.create_experiment(name))
