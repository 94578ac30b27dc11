"""Bad suites: every kind of mistake is reported with its path, and nothing runs.

Each case below is the same valid base suite with exactly one thing broken, so each must give
exactly one problem, at the named path, through the Python API (``load_suite`` then
``check_against_host``) and through ``xaudit validate`` (exit 4). ``xaudit run`` on the same file
exits 4 and writes nothing: the base suite's factory really trains a model, so a case that
slipped through validation would run and leave files behind.
"""

from __future__ import annotations

import copy
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from xaudit.cli import main
from xaudit.errors import SuiteError, XauditError
from xaudit.host import Host, create_host
from xaudit.results import AuditResult
from xaudit.suite import load_suite
from xaudit.suite_checks import check_against_host

MODELS = '''\
"""Factories for the validation tests (trained in milliseconds)."""

from sklearn.linear_model import LinearRegression


def linear(data):
    return LinearRegression().fit(data.X_train, data.y_train)
'''


@pytest.fixture(scope="module")
def host() -> Host:
    return create_host()


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[str]:
    """A ``module:function`` reference to a linear model factory next to the suites."""
    name = f"xaudit_validation_models_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(MODELS)
    yield f"{name}:linear"
    sys.modules.pop(name, None)


def base_suite(factory: str) -> dict[str, Any]:
    """A valid suite; every case below breaks exactly one thing in it."""
    return {
        "name": "validation-base",
        "seed": 0,
        "model": {"factory": factory, "task": "regression"},
        "data": {
            "source": "sklearn:diabetes",
            "split": {"test_size": 0.25},
            "explain": {"n": 3, "from": "test"},
            "background": {"n": 5},
        },
        "explainers": [{"id": "abl", "method": "ablation", "params": {"baseline": "background"}}],
        "checks": [{"check": "completeness", "explainer": "abl", "gate": {"threshold": 1e-8}}],
        "report": {"formats": ["json"]},
    }


@dataclass(frozen=True)
class Case:
    """One kind of bad input: how to break the base suite, where and what the problem is."""

    id: str
    breaks: Callable[[dict[str, Any]], object]
    """Mutates the suite in place (returns None), or returns raw file text to use instead."""
    path: str
    fragment: str


def _set(*keys: str | int, value: object) -> Callable[[dict[str, Any]], None]:
    def apply(suite: dict[str, Any]) -> None:
        node: Any = suite
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return apply


def _drop(*keys: str | int) -> Callable[[dict[str, Any]], None]:
    def apply(suite: dict[str, Any]) -> None:
        node: Any = suite
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return apply


def _set_all(*edits: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def apply(suite: dict[str, Any]) -> None:
        for *keys, value in edits:
            _set(*keys, value=value)(suite)

    return apply


def _model_file_with_options(suite: dict[str, Any]) -> str:
    """A ``.skops`` file (the sklearn adapter, by its suffix) with an option it refuses; the
    file exists (written next to the suite by ``write_case``)."""
    del suite["model"]["factory"]
    suite["model"]["path"] = "model.skops"
    suite["model"]["options"] = {"output": "logits"}
    return yaml.safe_dump(suite, sort_keys=False)


def _model_path_only(suite: dict[str, Any]) -> None:
    del suite["model"]["factory"]
    suite["model"]["path"] = "models/missing.skops"


def _rename_explainer(suite: dict[str, Any]) -> None:
    """An id with a space, which the check follows (so only the id's pattern is wrong)."""
    suite["explainers"][0]["id"] = suite["checks"][0]["explainer"] = "my explainer"


def _duplicate_explainer(suite: dict[str, Any]) -> None:
    suite["explainers"].append({"id": "abl", "method": "ablation"})


def _duplicate_check(suite: dict[str, Any]) -> None:
    suite["checks"].append(copy.deepcopy(suite["checks"][0]))


CASES = [
    Case("not_a_mapping", lambda s: "- just\n- a list\n", "",
         "a suite must be a mapping, got list"),
    Case("invalid_yaml", lambda s: "name: [unclosed\nseed: 0\n", "", "not valid YAML"),
    Case("missing_model", _drop("model"), "model", "Field required"),
    Case("missing_data_source", _drop("data", "source"), "data",
         "give exactly one of 'source', 'frame' or 'X'"),
    Case("unknown_top_level_key", _set("chekcs", value=[]), "chekcs",
         "unknown field (not allowed here)"),
    Case("model_path_and_factory", _set("model", "path", value="model.skops"), "model",
         "give exactly one of 'path', 'factory' or 'object'"),
    Case("model_neither_path_nor_factory", _drop("model", "factory"), "model",
         "give exactly one of 'path', 'factory' or 'object'"),
    Case("factory_without_colon", _set("model", "factory", value="models.train"), "model",
         "'factory' must look like 'module:function'"),
    Case("model_path_missing_file", _model_path_only, "model.path",
         "file models/missing.skops does not exist"),
    Case("unknown_adapter", _set("model", "adapter", value="skleran"), "model.adapter",
         "unknown adapter 'skleran'; did you mean 'sklearn'?"),
    Case("explainers_empty", _set("explainers", value=[]), "explainers",
         "List should have at least 1 item"),
    Case("explainer_unknown_method", _set("explainers", 0, "method", value="ablaton"),
         "explainers[0].method", "unknown explainer 'ablaton'; did you mean 'ablation'?"),
    Case("explainer_params_typo", _set("explainers", 0, "params", value={"basline": "mean"}),
         "explainers[0].params.basline", "unknown field (not allowed here)"),
    Case("explainer_param_out_of_range", _set("explainers", 0, "params", value={"max_batch": -1}),
         "explainers[0].params.max_batch", "Input should be greater than 0"),
    Case("explainer_param_wrong_type",
         _set("explainers", 0, "params", value={"max_batch": "lots"}),
         "explainers[0].params.max_batch", "Input should be a valid integer"),
    Case("explainer_param_not_a_choice",
         _set("explainers", 0, "params", value={"baseline": "median"}),
         "explainers[0].params.baseline", "Input should be 'background', 'mean' or 'zero'"),
    Case("explainer_id_bad_characters", _rename_explainer,
         "explainers[0].id", "String should match pattern"),
    Case("duplicate_explainer_ids", _duplicate_explainer, "explainers[1].id",
         "duplicate id 'abl' (also explainers[0])"),
    Case("check_unknown_explainer", _set("checks", 0, "explainer", value="ghost"),
         "checks[0].explainer", "no explainer has id 'ghost'; ids are abl"),
    Case("unknown_check", _set("checks", 0, "check", value="completness"), "checks[0].check",
         "unknown check 'completness'; did you mean 'completeness'"),
    Case("check_params_typo", _set("checks", 0, "params", value={"agregate": "max"}),
         "checks[0].params.agregate", "unknown field (not allowed here)"),
    Case("duplicate_check_ids", _duplicate_check, "checks[1].id",
         "duplicate check id 'completeness@abl'"),
    Case("gate_missing_threshold", _set("checks", 0, "gate", value={"direction": "lower"}),
         "checks[0].gate.threshold", "Field required"),
    Case("gate_bad_direction",
         _set("checks", 0, "gate", value={"threshold": 0.1, "direction": "down"}),
         "checks[0].gate.direction", "Input should be 'lower' or 'higher'"),
    Case("negative_seed", _set("seed", value=-1), "seed",
         "Input should be greater than or equal to 0"),
    Case("split_test_size_too_big", _set("data", "split", "test_size", value=1.5),
         "data.split.test_size", "Input should be less than 1"),
    Case("split_test_size_negative", _set("data", "split", "test_size", value=-0.1),
         "data.split.test_size", "Input should be greater than or equal to 0"),
    Case("explain_rows_unknown_pool", _set("data", "explain", "from", value="tset"),
         "data.explain.from", "Input should be 'test', 'train' or 'all'"),
    Case("unknown_report_format", _set("report", "formats", value=["json", "pdff"]),
         "report.formats[1]",
         "Input should be 'json', 'html', 'pdf', 'md', 'junit' or 'model_card'"),
    Case("trust_in_model_options", _set("model", "options", value={"trust": True}),
         "model.options.trust", "'trust' is a security switch and cannot be set in options"),
    Case("options_against_the_named_adapter", _set_all(
        ("model", "adapter", "sklearn"), ("model", "options", {"outptu": "proba"})),
         "model.options.outptu", "unknown field (not allowed here)"),
    Case("options_against_the_adapter_of_the_file_suffix", _model_file_with_options,
         "model.options.output", "Input should be"),
    Case("duplicated_features", _set("data", "features", value=["age", "bmi", "age"]),
         "data.features", "'age' listed more than once"),
    Case("warn_threshold_on_the_wrong_side",
         _set("checks", 0, "gate", value={"threshold": 1e-8, "warn_threshold": 1e-6}),
         "checks[0].gate.warn_threshold", "must be below the threshold 1e-08 when lower"),
    Case("seed_is_a_boolean", _set("seed", value=True), "seed", "Input should be a valid integer"),
    Case("threshold_is_text", lambda s: yaml.safe_dump(s, sort_keys=False).replace(
        "threshold: 1.0e-08", "threshold: '1e-6'"),
         "checks[0].gate.threshold", "Input should be a valid number"),
    Case("threshold_is_not_finite", _set("checks", 0, "gate", "threshold", value=float("inf")),
         "checks[0].gate.threshold", "Input should be a finite number"),
    Case("duplicated_yaml_key", lambda s: yaml.safe_dump(s, sort_keys=False) + "seed: 2\n",
         "seed", "key 'seed' is given twice"),
    Case("unknown_sklearn_dataset", _set("data", "source", value="sklearn:diabetis"),
         "data.source", "unknown scikit-learn dataset 'diabetis'"),
    Case("unsupported_data_file_type", _set("data", "source", value="data.xlsx"),
         "data.source", "unsupported file type .xlsx"),
    Case("model_options_key_not_text", _set("model", "options", value={1: "x"}),
         "model.options.1", "key 1 is a int, not text"),
    Case("primary_explainer_unknown",
         _set("documentation", value={"decision": {"threshold": 150.0,
                                                   "primary_explainer": "treeshap"}}),
         "documentation.decision.primary_explainer", "no explainer has id 'treeshap'; ids are abl"),
    Case("directional_reason_code_misspelt",
         _set("documentation", value={"reason_codes": {"bmi": {"hihg": "BMI is high"}}}),
         "documentation.reason_codes.bmi.hihg", "unknown field (not allowed here)"),
    Case("directional_reason_code_empty",
         _set("documentation", value={"reason_codes": {"bmi": {}}}),
         "documentation.reason_codes.bmi", "give a 'high' or a 'low' statement (or both)"),
    Case("reason_code_not_text", _set("documentation", value={"reason_codes": {"bmi": 3}}),
         "documentation.reason_codes.bmi", "write a statement, or a mapping with 'high'"),
]


def write_case(case: Case, factory: str, folder: Path) -> Path:
    (folder / "model.skops").write_bytes(b"")  # never read: validation stops before loading
    suite = base_suite(factory)
    raw = case.breaks(suite)
    text = raw if isinstance(raw, str) else yaml.safe_dump(suite, sort_keys=False)
    path = folder / f"{case.id}.yaml"
    path.write_text(text)
    return path


def test_at_least_twelve_distinct_kinds_of_bad_input() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 12


def test_base_suite_is_valid(tmp_path: Path, factory: str, host: Host,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """The control: without the breakage, the suite validates, and ``run`` writes results."""
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(base_suite(factory)))
    check_against_host(load_suite(path), host, str(path))
    assert main(["validate", str(path)]) == 0
    assert "valid (1 explainer(s), 1 check(s))" in capsys.readouterr().out
    out = tmp_path / "results"
    assert main(["run", "-q", str(path), "--out", str(out)]) == 0
    assert (out / "results.json").is_file()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_api_reports_one_problem_at_its_path(case: Case, tmp_path: Path, factory: str,
                                             host: Host) -> None:
    path = write_case(case, factory, tmp_path)
    with pytest.raises(SuiteError) as caught:
        check_against_host(load_suite(path), host, str(path))
    error = caught.value
    assert isinstance(error, XauditError)
    assert len(error.problems) == 1, [str(p) for p in error.problems]
    problem = error.problems[0]
    assert problem.path == case.path
    assert case.fragment in problem.message
    expected_line = f"{case.path}: {problem.message}" if case.path else problem.message
    assert str(problem) == expected_line
    assert str(path) in str(error)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_validate_prints_path_and_exits_4(case: Case, tmp_path: Path, factory: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = write_case(case, factory, tmp_path)
    assert main(["validate", str(path)]) == 4
    captured = capsys.readouterr()
    assert "valid (" not in captured.out
    assert str(path) in captured.err
    assert "1 problem(s)" in captured.err
    if case.path:
        lines = [line.strip() for line in captured.err.splitlines()]
        assert any(line.startswith(f"{case.path}: ") and case.fragment in line
                   for line in lines), captured.err
    else:
        assert case.fragment in captured.err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_run_on_invalid_suite_exits_4_and_runs_nothing(
    case: Case, tmp_path: Path, factory: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_case(case, factory, tmp_path)
    out = tmp_path / "results"
    assert main(["run", "-q", str(path), "--out", str(out)]) == 4
    assert not out.exists()
    captured = capsys.readouterr()
    assert case.fragment in captured.err
    assert "results written" not in captured.out


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path, factory: str,
                                                      host: Host,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    suite = base_suite(factory)
    suite["model"]["adapter"] = "skleran"
    suite["explainers"][0]["params"] = {"basline": "mean", "max_batch": 0}
    suite["explainers"].append({"id": "second", "method": "ablaton"})
    suite["checks"].append({"check": "completness", "explainer": "ghost"})
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(SuiteError) as caught:
        check_against_host(load_suite(path), host, str(path))
    paths = {p.path for p in caught.value.problems}
    expected = {
        "model.adapter",
        "explainers[0].params.basline",
        "explainers[0].params.max_batch",
        "explainers[1].method",
        "checks[1].explainer",
        "checks[1].check",
    }
    assert paths == expected
    assert main(["validate", str(path)]) == 4
    err = capsys.readouterr().err
    assert f"{len(expected)} problem(s)" in err
    for where in expected:
        assert f"{where}: " in err


def test_schema_problems_are_all_reported(tmp_path: Path, factory: str) -> None:
    suite = base_suite(factory)
    suite["name"] = ""
    suite["seed"] = -3
    suite["data"]["split"]["test_size"] = 2
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert {p.path for p in caught.value.problems} == {"name", "seed", "data.split.test_size"}


def test_unknown_name_with_nothing_close_lists_registered_names(tmp_path: Path, factory: str,
                                                                host: Host) -> None:
    suite = base_suite(factory)
    suite["explainers"][0]["method"] = "zzzzzz"
    path = tmp_path / "far.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(SuiteError) as caught:
        check_against_host(load_suite(path), host, str(path))
    (problem,) = caught.value.problems
    assert problem.path == "explainers[0].method"
    assert "unknown explainer 'zzzzzz'; registered:" in problem.message
    assert "ablation" in problem.message


def test_missing_suite_file_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(missing)]) == 4
    assert "does not exist" in capsys.readouterr().err


def test_validate_reports_missing_data_file(tmp_path: Path, factory: str, host: Host,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    suite = base_suite(factory)
    suite["data"]["source"] = "data/missing.csv"
    path = tmp_path / "nodata.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert main(["validate", str(path)]) == 4
    assert "data.source: " in capsys.readouterr().err
    with pytest.raises(SuiteError) as caught:
        check_against_host(load_suite(path), host, str(path))
    assert [p.path for p in caught.value.problems] == ["data.source"]


def test_schema_and_plugin_problems_are_reported_together(tmp_path: Path, factory: str,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    """A schema problem no longer hides the plugin-parameter problems behind it."""
    suite = base_suite(factory)
    suite["seed"] = -1
    suite["explainers"][0]["params"] = {"basline": "mean"}
    suite["checks"][0]["params"] = {"agregate": "max"}
    suite["model"]["options"] = {"trust": True}
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert main(["validate", str(path)]) == 4
    err = capsys.readouterr().err
    assert "4 problem(s)" in err
    for where in ("seed: ", "explainers[0].params.basline: ", "checks[0].params.agregate: ",
                  "model.options.trust: "):
        assert f"  {where}" in err


def test_documentation_names_are_checked_before_any_work(tmp_path: Path, factory: str,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """Typos in the decision's output, reason codes and segments are exit 4 once data and model
    are known; the explainer never runs (its crash would give exit 3)."""
    suite = base_suite(factory)
    suite["model"]["output_names"] = ["progression"]
    suite["explainers"][0]["params"] = {"max_batch": 1}
    suite["documentation"] = {
        "decision": {"output": "progresion", "threshold": 150},
        "reason_codes": {"bmi": "Body-mass index is high", "bim": "typo"},
        "segments": ["sex", {"feature": "aeg", "bins": [0.0]}],
    }
    path = tmp_path / "doc.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert main(["validate", str(path)]) == 0  # names need the data and the model
    out = tmp_path / "out"
    assert main(["run", "-q", str(path), "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert "documentation.decision.output: unknown output 'progresion'; the model's outputs " \
           "are 'progression'" in err
    assert "documentation.reason_codes.bim: unknown feature 'bim'" in err
    assert "documentation.segments[1].feature: unknown feature 'aeg'" in err
    assert not out.exists()


def test_explain_n_above_the_pool_is_reduced_and_said(tmp_path: Path, factory: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    suite = base_suite(factory)
    suite["data"]["explain"] = {"n": 500, "from": "test"}
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(suite))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0  # -q would log errors only
    n_test = round(442 * 0.25)  # scikit-learn's diabetes data has 442 rows
    note = (f"data.explain.n is 500 but the 'test' pool has {n_test} rows; all {n_test} are "
            "used")
    assert any(note in record.message for record in caplog.records)
    sampling = AuditResult.load(out).data["sampling"]
    assert sampling["explain"]["n_used"] == n_test
    assert sampling["notes"] == [note]
