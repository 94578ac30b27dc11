"""``xaudit.run_suite`` with a suite mapping holding an in-memory model and DataFrame or arrays.

Oracles: the suite run on the same data written to a CSV file (same numbers), the model's own
fingerprint, hashes that must change when a value, a column name or a row label changes and
stay equal for an equal copy, and the DataFrame's own index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import xaudit
from xaudit.data import frame_sha256
from xaudit.results import AuditResult


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    table = X.assign(progression=y)
    table.index = [f"p{i:03d}" for i in range(len(table))]
    return table


@pytest.fixture(scope="module")
def ridge(frame: pd.DataFrame) -> Ridge:
    return Ridge(alpha=0.1).fit(frame.drop(columns="progression"), frame["progression"])


def _suite(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    return {"name": "in-memory", "seed": 5, "model": {"object": model},
            "data": {**data, "explain": {"n": 6}, "background": {"n": 30}},
            "explainers": [{"id": "abl", "method": "ablation"}],
            "checks": [{"check": "completeness", "explainer": "abl",
                        "gate": {"threshold": 1e-6}}],
            "report": {"formats": ["json"]}}


def test_a_frame_and_a_model_object_run_as_a_csv_suite_would(
        frame: pd.DataFrame, ridge: Ridge, tmp_path: Path) -> None:
    memory = xaudit.run_suite(_suite(ridge, {"frame": frame, "target": "progression"}),
                              out_dir=tmp_path / "memory")
    frame.to_csv(tmp_path / "data.csv", index=False)
    import skops.io

    skops.io.dump(ridge, tmp_path / "model.skops")
    on_disk = _suite(None, {"source": str(tmp_path / "data.csv"), "target": "progression"})
    on_disk["model"] = {"path": str(tmp_path / "model.skops")}
    files = xaudit.run_suite(on_disk)
    a, b = memory.explanations["abl"], files.explanations["abl"]
    np.testing.assert_array_equal(a.values, b.values)
    assert memory.exit_code() == 0
    assert memory.checks[0].status == "pass"
    explained = memory.data["explain_rows"]
    assert a.row_index.labels == tuple(frame.index[explained])
    assert memory.provenance["hashes"]["model"] == xaudit.adapt(ridge).fingerprint()
    assert memory.provenance["hashes"]["data"] == frame_sha256(frame)
    assert memory.suite["model"]["object"] == "in-memory sklearn.linear_model._ridge.Ridge"
    assert memory.suite["data"]["frame"] == "in-memory pandas.DataFrame shaped [442, 11]"
    assert "source" not in memory.suite["data"] or memory.suite["data"]["source"] is None
    back = AuditResult.load(tmp_path / "memory")
    assert back.explanations["abl"].row_index == a.row_index
    assert "frame" not in files.suite["data"]
    assert "object" not in files.suite["model"]


def test_the_data_hash_follows_values_columns_and_index(frame: pd.DataFrame) -> None:
    base = frame_sha256(frame)
    assert frame_sha256(frame.copy()) == base
    changed = frame.copy()
    changed.iloc[3, 2] += 1e-12
    relabelled = frame.copy()
    relabelled.index = [f"q{i:03d}" for i in range(len(frame))]
    renamed = frame.rename(columns={"bmi": "BMI"})
    reordered = frame.iloc[::-1]
    named = frame.rename_axis("patient")
    digests = {base, frame_sha256(changed), frame_sha256(relabelled), frame_sha256(renamed),
               frame_sha256(reordered), frame_sha256(named)}
    assert len(digests) == 6


def test_arrays_and_invalid_mappings(ridge: Ridge, frame: pd.DataFrame) -> None:
    X = frame.drop(columns="progression").to_numpy()
    audit = xaudit.run_suite(_suite(ridge, {"X": X, "y": frame["progression"].to_numpy()}))
    assert audit.explanations["abl"].row_index is None
    assert audit.data["target"] == "y"
    with pytest.raises(xaudit.SuiteError, match="exactly one of 'source', 'frame' or 'X'"):
        xaudit.run_suite(_suite(ridge, {"X": X, "frame": frame}))
    with pytest.raises(xaudit.SuiteError, match="exactly one of 'path', 'factory' or 'object'"):
        xaudit.run_suite({**_suite(ridge, {"X": X}), "model": {"object": ridge, "path": "m"}})
    with pytest.raises(xaudit.InputError, match=r"data\.frame must be a pandas DataFrame"):
        xaudit.run_suite(_suite(ridge, {"frame": X}))
    with pytest.raises(xaudit.InputError, match="no target column 'label'"):
        xaudit.run_suite(_suite(ridge, {"frame": frame, "target": "label"}))


def _problems(suite: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(xaudit.SuiteError) as caught:
        xaudit.run_suite(suite)
    return {p.path: p.message for p in caught.value.problems}


def test_a_suite_mapping_is_validated_as_strictly_as_a_file(ridge: Ridge,
                                                            frame: pd.DataFrame) -> None:
    """The mapping's types are JSON's, as a suite file's are (no coercion), bounds hold, and
    an object field holds an object: a path there would skip the checks on model.path."""
    data = {"frame": frame, "target": "progression"}
    suite = _suite(ridge, data)
    assert "valid integer" in _problems({**suite, "seed": True})["seed"]
    coerced = _suite(ridge, data)
    coerced["checks"][0]["gate"]["threshold"] = "1e-6"
    assert "valid number" in _problems(coerced)["checks[0].gate.threshold"]
    coerced["checks"][0]["gate"]["threshold"] = float("nan")
    assert "finite number" in _problems(coerced)["checks[0].gate.threshold"]
    huge = _suite(ridge, data)
    huge["report"]["max_subjects"] = 10**9
    assert "10000" in _problems(huge)["report.max_subjects"]
    assert "not a path" in _problems(_suite("model.skops", data))["model.object"]
    assert "not a path" in _problems(_suite(ridge, {"frame": "data.csv"}))["data.frame"]
    nested: dict[str, Any] = {}
    nested["inner"] = nested  # a mapping built in Python may contain itself
    problems = _problems({**suite, "documentation": {"reason_codes": nested}})
    assert any("nested deeper than" in message for message in problems.values())
    unknown = _problems({**suite, "data": {**data, "rows": 3}})
    assert unknown["data.rows"] == "unknown field (not allowed here)"
    numpy_typed = _suite(ridge, data)
    numpy_typed["seed"] = np.int64(5)  # numpy scalars are numbers, as in a file
    numpy_typed["checks"][0]["gate"]["threshold"] = np.float64(1e-6)
    assert xaudit.run_suite(numpy_typed).exit_code() == 0
