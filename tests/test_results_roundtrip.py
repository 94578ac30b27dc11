"""Saved results (``results.json`` + ``arrays.npz``) load back equal; runs are reproducible.

The example suite (``examples/diabetes/audit.yaml``) is run once per module; what it saved is
loaded back and compared field by field with the in-memory result. Hashes are checked against
``hashlib`` on the suite file, explained rows against scikit-learn's copy of the data, and the
JUnit file against the check values it reports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_diabetes

import xaudit
from xaudit import Attribution, Explainer, hookimpl
from xaudit.explanation import Explanation
from xaudit.results import AuditResult, CheckResult, ErrorInfo

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diabetes" / "audit.yaml"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass
class Run:
    result: AuditResult
    loaded: AuditResult
    out: Path


def _run(suite: Path, out: Path) -> Run:
    had_models = "models" in sys.modules
    try:
        result = xaudit.run_suite(suite, out_dir=out)
    finally:
        if not had_models:
            sys.modules.pop("models", None)  # the example's factory module, resolved by name
    return Run(result, AuditResult.load(out), out)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(EXAMPLE, tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="module")
def example_again(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(EXAMPLE, tmp_path_factory.mktemp("example-again"))


def assert_explanations_equal(a: Explanation, b: Explanation) -> None:
    for name in ("values", "base_values", "target_indices", "inputs", "std_errors"):
        left, right = getattr(a, name), getattr(b, name)
        if left is None or right is None:
            assert left is None
            assert right is None
            continue
        assert left.dtype == right.dtype, name
        np.testing.assert_array_equal(left, right, err_msg=name)
    assert a.extras.keys() == b.extras.keys()
    for key in a.extras:
        assert a.extras[key].dtype == b.extras[key].dtype
        np.testing.assert_array_equal(a.extras[key], b.extras[key], err_msg=key)
    for name in ("method", "feature_names", "output_names", "params", "seed", "wall_time_s",
                 "metadata", "additive", "handoff"):
        assert getattr(a, name) == getattr(b, name), name


def assert_checks_equal(a: CheckResult, b: CheckResult) -> None:
    for f in dataclasses.fields(CheckResult):
        left, right = getattr(a, f.name), getattr(b, f.name)
        if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
            assert left is not None
            assert right is not None
            np.testing.assert_array_equal(left, right, err_msg=f.name)
        else:
            assert left == right, f.name


# --- the example suite, saved and loaded ---------------------------------------------------------


def test_example_passes_and_writes_its_files(example: Run) -> None:
    assert example.result.exit_code() == xaudit.ExitCode.OK
    assert {p.name for p in example.out.iterdir()} == {
        "results.json", "arrays.npz", "summary.md", "junit.xml", "report.html", "report.pdf",
        "model_card.md", "model_card.json", "manifest.json"}


def test_every_explanation_array_round_trips(example: Run) -> None:
    declared = {e["id"] for e in yaml.safe_load(EXAMPLE.read_text())["explainers"]}
    assert example.loaded.explanations.keys() == example.result.explanations.keys() == declared
    for key, explanation in example.result.explanations.items():
        assert_explanations_equal(explanation, example.loaded.explanations[key])


def test_every_check_field_round_trips(example: Run) -> None:
    declared = yaml.safe_load(EXAMPLE.read_text())["checks"]
    assert len(example.loaded.checks) == len(example.result.checks) == len(declared)
    for ours, theirs in zip(example.result.checks, example.loaded.checks, strict=True):
        assert_checks_equal(ours, theirs)
    assert any(c.values is not None for c in example.loaded.checks)  # per-row values travel too


def test_provenance_suite_and_descriptions_round_trip(example: Run) -> None:
    a, b = example.result, example.loaded
    assert b.suite_name == a.suite_name == "diabetes-progression"
    assert b.suite == a.suite
    assert b.model == a.model
    assert b.data == a.data
    assert b.provenance == a.provenance
    assert b.explainer_errors == a.explainer_errors == {}
    assert b.suite_text == a.suite_text == EXAMPLE.read_text()


def test_explained_rows_are_the_datasets_rows(example: Run) -> None:
    """Inputs are rows of scikit-learn's diabetes data; rows come from the declared pools."""
    X, _ = load_diabetes(return_X_y=True)
    data = example.result.data
    rows = np.asarray(data["explain_rows"])
    background = np.asarray(data["sampling"]["background"]["rows"])
    np.testing.assert_array_equal(example.loaded.explanations["treeshap"].inputs, X[rows])
    assert rows.size == 40
    assert np.unique(rows).size == 40
    assert background.size == np.unique(background).size == 100
    assert data["n_train"] + data["n_test"] == X.shape[0]
    assert abs(data["n_test"] - 0.25 * X.shape[0]) <= 1
    assert not set(rows.tolist()) & set(background.tolist())  # test pool vs train pool


def test_two_shapley_explainers_sum_to_the_same_outputs(example: Run) -> None:
    """Exact TreeSHAP (path-dependent) and KernelSHAP (marginal game) explain different games,
    but both are efficient: base value plus attributions is the model output of every row."""
    tree = example.loaded.explanations["treeshap"]
    kernel = example.loaded.explanations["kernelshap"]
    np.testing.assert_array_equal(tree.inputs, kernel.inputs)
    outputs_tree = tree.values.sum(axis=1) + tree.base_values
    outputs_kernel = kernel.values.sum(axis=1) + kernel.base_values
    np.testing.assert_allclose(outputs_tree, outputs_kernel, rtol=1e-9, atol=1e-7)


def test_results_json_is_valid_json_with_hashes_and_seeds(example: Run) -> None:
    def refuse(constant: str) -> Any:
        raise ValueError(f"results.json holds {constant}, which is not JSON")

    document = json.loads((example.out / "results.json").read_text(), parse_constant=refuse)
    hashes = document["provenance"]["hashes"]
    assert set(hashes) == {"suite", "model", "data"}
    for value in hashes.values():
        assert HEX64.match(value)
    assert hashes["suite"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert hashes["model"] == document["model"]["sha256"]
    assert hashes["data"] == document["data"]["sha256"]
    declared = yaml.safe_load(EXAMPLE.read_text())
    seeds = document["provenance"]["seeds"]
    assert seeds["suite"] == declared["seed"] == 7
    assert set(seeds["explainers"]) == {e["id"] for e in declared["explainers"]}
    assert set(seeds["checks"]) == {c["name"] for c in document["checks"]}
    assert document["explanations"]["treeshap"]["seed"] == seeds["explainers"]["treeshap"]
    for check in document["checks"]:
        assert check["seed"] == seeds["checks"][check["name"]]
    assert document["exit_code"] == 0


def test_explanation_with_std_errors_and_extras_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(12345)
    n, shape, k = 4, (2, 3), 2
    explanation = Explanation(
        method="test.stochastic",
        values=rng.normal(size=(n, *shape, k)),
        base_values=rng.normal(size=(n, k)),
        feature_names=tuple(f"px{i}" for i in range(6)),
        output_names=("cat", "dog"),
        target_indices=np.tile([1, 0], (n, 1)),
        inputs=rng.normal(size=(n, *shape)).astype(np.float32),
        params={"n_samples": 64, "nested": {"a": [1, 2]}},
        seed=99,
        wall_time_s=0.125,
        std_errors=rng.uniform(size=(n, *shape, k)),
        extras={"delta": rng.normal(size=n), "counts": np.arange(n, dtype=np.int32)},
        metadata={"converged": True, "steps": [8, 16]},
        additive=True,
    )
    result = AuditResult(
        suite_name="synthetic",
        suite={"name": "synthetic"},
        model={"name": "m"},
        data={"source": "memory"},
        explanations={"stoch": explanation},
        explainer_errors={"broken": ErrorInfo("ValueError", "bad", "Traceback ...")},
        checks=[
            CheckResult("c1", "completeness", "stoch", "lower", "fail", value=0.5,
                        threshold=0.1, values=np.array([0.5, 0.25, 0.0, 0.125]),
                        details={"worst_row": 0}, params={"aggregate": "max"}, seed=5),
            CheckResult("c2", "completeness", "broken", "lower", "error",
                        error=ErrorInfo("ExplainerFailed", "nothing to check", "")),
        ],
        provenance={"seeds": {"suite": 1}},
        suite_text="name: synthetic\n",
    )
    result.save(tmp_path)
    loaded = AuditResult.load(tmp_path)
    assert_explanations_equal(explanation, loaded.explanations["stoch"])
    assert loaded.explanations["stoch"].std_errors is not None
    assert set(loaded.explanations["stoch"].extras) == {"delta", "counts"}
    for ours, theirs in zip(result.checks, loaded.checks, strict=True):
        assert_checks_equal(ours, theirs)
    assert loaded.explainer_errors == result.explainer_errors
    assert loaded.provenance == result.provenance
    assert loaded.suite_text == result.suite_text
    assert loaded.exit_code() == result.exit_code() == xaudit.ExitCode.CRASHED


# --- determinism under the seed ---------------------------------------------------------------


def test_same_suite_twice_gives_identical_arrays(example: Run, example_again: Run) -> None:
    first, second = example.loaded, example_again.loaded
    for key in first.explanations:
        a, b = first.explanations[key], second.explanations[key]
        for name in ("values", "base_values", "target_indices", "inputs"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert first.data == second.data
    assert first.provenance["seeds"] == second.provenance["seeds"]
    assert first.provenance["hashes"] == second.provenance["hashes"]
    assert first.checks[0].value == second.checks[0].value


def test_another_seed_draws_another_background(example: Run, tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    assert "\nseed: 7\n" in text
    suite = tmp_path / "audit.yaml"
    suite.write_text(text.replace("\nseed: 7\n", "\nseed: 8\n"))
    shutil.copy(EXAMPLE.parent / "models.py", tmp_path / "models.py")
    other = _run(suite, tmp_path / "out").loaded
    ours = example.loaded
    assert other.provenance["seeds"]["suite"] == 8
    assert other.provenance["hashes"]["suite"] == hashlib.sha256(suite.read_bytes()).hexdigest()
    assert other.provenance["hashes"]["suite"] != ours.provenance["hashes"]["suite"]
    assert other.provenance["hashes"]["data"] == ours.provenance["hashes"]["data"]
    background = ours.data["sampling"]["background"]["rows"]
    assert other.data["sampling"]["background"]["rows"] != background
    assert other.provenance["seeds"]["explainers"] != ours.provenance["seeds"]["explainers"]


# --- junit.xml ----------------------------------------------------------------------------------

TREE_MODELS = '''\
from sklearn.tree import DecisionTreeRegressor


def tree(data):
    return DecisionTreeRegressor(max_depth=3, random_state=0).fit(data.X_train, data.y_train)
'''


class _Boom(Explainer):
    name = "test.boom"

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        raise RuntimeError("kaboom")


class _BoomPlugin:
    @hookimpl
    def xaudit_register_explainers(self, registry: Any) -> None:
        registry.add(_Boom)


@pytest.fixture
def tree_module(tmp_path: Path) -> Iterator[str]:
    name = f"xaudit_junit_models_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(TREE_MODELS)
    yield name
    sys.modules.pop(name, None)


def test_junit_structure_and_failure_message(tmp_path: Path, tree_module: str) -> None:
    suite = tmp_path / "junit.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "junit-demo",
        "model": {"factory": f"{tree_module}:tree"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 4}, "background": {"n": 8}},
        "explainers": [{"id": "abl", "method": "ablation"}, {"id": "boom", "method": "test.boom"}],
        "checks": [
            {"check": "completeness", "explainer": "abl", "id": "strict",
             "gate": {"threshold": 1e-9}},
            {"check": "completeness", "explainer": "abl", "id": "loose",
             "gate": {"threshold": 1e9}},
            {"check": "completeness", "explainer": "abl", "id": "ungated"},
        ],
        "report": {"formats": ["json", "junit"]},
    }))
    out = tmp_path / "out"
    host = xaudit.create_host(plugins=[_BoomPlugin()])
    result = xaudit.run_suite(suite, host=host, out_dir=out)
    # the crashed explainer has no check, so every check on "abl" still ran
    assert {c.name: c.status for c in result.checks} == {
        "strict": "fail", "loose": "pass", "ungated": "not_gated"}

    root = ET.parse(out / "junit.xml").getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    (testsuite,) = suites
    assert "junit-demo" in testsuite.get("name", "")
    assert testsuite.get("tests") == "4"
    assert testsuite.get("failures") == "1"
    assert testsuite.get("errors") == "1"
    assert testsuite.get("skipped") == "1"
    cases = {case.get("name"): case for case in testsuite.findall("testcase")}
    assert set(cases) == {"strict", "loose", "ungated", "boom"}

    failure = cases["strict"].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    strict = next(c for c in result.checks if c.name == "strict")
    assert strict.value is not None
    assert strict.value > 1e-9
    numbers = [float(m) for m in re.findall(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", message)]
    assert any(v == pytest.approx(strict.value, rel=1e-5) for v in numbers), message
    assert 1e-9 in numbers, message

    assert list(cases["loose"]) == []  # a passing gate: no failure, error or skipped child
    assert cases["ungated"].find("skipped") is not None
    error = cases["boom"].find("error")
    assert error is not None
    assert error.get("type") == "RuntimeError"
    assert "kaboom" in error.get("message", "")
    assert "Traceback (most recent call last)" in (error.text or "")


def test_junit_of_the_passing_example(example: Run) -> None:
    root = ET.parse(example.out / "junit.xml").getroot()
    cases = root.findall("testsuite/testcase")
    assert {case.get("name") for case in cases} == {c.name for c in example.result.checks}
    gated = {c.name for c in example.result.checks if c.status != "not_gated"}
    assert all(list(case) == [] for case in cases if case.get("name") in gated)  # all passed
    assert root.find("testsuite").get("failures") == "0"  # type: ignore[union-attr]


def test_nan_check_value_keeps_results_json_valid(tmp_path: Path) -> None:
    result = AuditResult(
        suite_name="nan", suite={}, model={}, data={},
        checks=[CheckResult("c", "completeness", "e", "lower", "fail", value=float("nan"),
                            threshold=0.1)],
    )
    result.save(tmp_path)

    def refuse(constant: str) -> Any:
        raise ValueError(f"results.json holds {constant}, which is not JSON")

    json.loads((tmp_path / "results.json").read_text(), parse_constant=refuse)
    value = AuditResult.load(tmp_path).checks[0].value
    assert value is not None
    assert np.isnan(value)
