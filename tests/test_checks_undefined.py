"""NaN never passes: non-finite attributions are refused when built, undefined statistics fail.

Issue 13, defect 3. An explainer that returns NaN (or infinite) values, base values or standard
errors is refused when ``xaudit.explain`` builds its explanation: through the CLI that is a
crashed explainer (exit 3) whose error names the method, the count and the first rows and
features, while the other explainers' results are still written. Every check whose statistic
is undefined on some row (a rank or Pearson correlation of a constant map, the relative change
of a zero map, a ranking of tied scores, flat curves, non-finite attributions, no rows at all)
reports NaN, which fails every gate in either direction, and says why in its details.

The oracles are facts, not our numbers: for the linear model ``f(x) = w . x`` the occlusion
attributions are ``w_i x_i`` exactly, so a zero weight vector gives a constant (zero) map whose
correlation with anything is undefined (scipy's ``pearsonr``/``spearmanr`` say NaN too), and
the constant explainer's map is constant by construction.
"""

from __future__ import annotations

import json
import math
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy import stats

import xaudit
from xaudit.api import CountingModel, gate_status
from xaudit.errors import AttributionError, InputError
from xaudit.explanation import Attribution, Explanation
from xaudit.hookspecs import hookimpl
from xaudit.host import create_host
from xaudit.model import InputSpec, ModelBase
from xaudit.plugin import Explainer
from xaudit.randomization import Randomization, RandomizedStage
from xaudit.suite import GateSpec

N, D = 12, 5
WEIGHTS = np.array([3.0, -2.0, 1.0, 0.5, -0.25])


class Linear(ModelBase):
    """``f(x) = w . x``; offers ``randomization`` (kind ``leaves``): a copy with other weights."""

    weights: np.ndarray = WEIGHTS
    randomized_weights: np.ndarray = WEIGHTS[::-1]

    def _predict_raw(self, X: np.ndarray) -> Any:
        return np.asarray(X, dtype=np.float64) @ self.weights

    def fingerprint(self) -> str:
        return str(self.weights.tobytes().hex())

    def randomizations(self) -> tuple[str, ...]:
        return ("leaves",)

    def randomized(self, request: Randomization,
                   rng: np.random.Generator) -> tuple[RandomizedStage, ...]:
        return (RandomizedStage("leaves", linear(self.randomized_weights, name="randomized")),)


def linear(weights: np.ndarray, name: str = "linear",
           randomized: np.ndarray | None = None) -> Linear:
    model = Linear(name=name, adapter="test", task="regression", input_spec=InputSpec((D,)),
                   output_names=("y",), capabilities=frozenset({"predict", "randomization"}))
    model.weights = np.asarray(weights, dtype=np.float64)
    model.randomized_weights = WEIGHTS[::-1] if randomized is None else randomized
    return model


class Occlude(Explainer):
    """``phi_i = f(x) - f(x with x_i := 0)``, base value ``f(0)`` (exact for a linear f)."""

    name = "test.occlude"
    additive = True

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        fx = model.predict(X)
        values = np.empty((*X.shape, fx.shape[1]))
        for i in range(X.shape[1]):
            cut = X.copy()
            cut[:, i] = 0.0
            values[:, i] = fx - model.predict(cut)
        base = np.repeat(model.predict(np.zeros((1, X.shape[1]))), X.shape[0], axis=0)
        return Attribution(values=np.take_along_axis(values, targets.indices[:, None, :], axis=2),
                           base_values=np.take_along_axis(base, targets.indices, axis=1))


class Zero(Explainer):
    """All-zero attributions: a constant map (ranks nothing, correlates with nothing)."""

    name = "test.zero"

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        return Attribution(values=np.zeros((*X.shape, targets.n_slots)),
                           base_values=np.zeros((X.shape[0], targets.n_slots)))


class NotFinite(Explainer):
    """NaN attributions (or, with ``where``, NaN base values or infinite standard errors)."""

    name = "test.nan"

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        return Attribution(values=np.full((*X.shape, targets.n_slots), np.nan))


class NanBase(Explainer):
    name = "test.nan_base"

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        base = np.zeros((X.shape[0], targets.n_slots))
        base[3, 0] = np.nan
        return Attribution(values=np.zeros((*X.shape, targets.n_slots)), base_values=base)


class InfiniteErrors(Explainer):
    name = "test.inf_errors"

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        errors = np.zeros((*X.shape, targets.n_slots))
        errors[2, 4, 0] = np.inf
        errors[5, 1, 0] = -np.inf
        return Attribution(values=np.ones((*X.shape, targets.n_slots)), std_errors=errors)


class PartlyNan(Explainer):
    """Finite except features 1 and 3 of rows 2 and 7."""

    name = "test.partly_nan"

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        values = np.ones((*X.shape, targets.n_slots))
        values[[2, 7], 1] = np.nan
        values[[2, 7], 3] = np.inf
        return Attribution(values=values)


@hookimpl
def xaudit_register_explainers(registry: Any) -> None:
    for cls in (Occlude, Zero, NotFinite, NanBase, InfiniteErrors, PartlyNan):
        registry.add(cls)


@pytest.fixture(scope="module")
def env() -> dict[str, Any]:
    rng = np.random.default_rng(5)
    host = create_host(plugins=[sys.modules[__name__]], autoload=False)
    return {"host": host, "X": rng.normal(size=(N, D)), "bg": rng.normal(size=(20, D)),
            "names": ("a", "b", "c", "d", "e")}


def explain(env: dict[str, Any], method: str, model: Any = None) -> Explanation:
    return xaudit.explain(linear(WEIGHTS) if model is None else model, env["X"], method,
                          host=env["host"], feature_names=env["names"])


# --------------------------------------------------------------- refused when built


def test_nan_attributions_are_refused_when_built(env: dict[str, Any]) -> None:
    with pytest.raises(AttributionError) as info:
        explain(env, "test.nan")
    message = str(info.value)
    assert "'test.nan'" in message
    assert f"{N * D} of {N * D}" in message
    assert "rows 0, 1, 2" in message
    assert "'a', 'b', 'c'" in message


def test_the_message_names_the_first_bad_rows_and_features(env: dict[str, Any]) -> None:
    with pytest.raises(AttributionError) as info:
        explain(env, "test.partly_nan")
    message = str(info.value)
    assert f"4 of {N * D} attribution values" in message
    assert "rows 2, 7" in message
    assert "'b', 'd'" in message
    assert "2 NaN, 2 infinite" in message


def test_nan_base_values_and_infinite_standard_errors_are_refused(env: dict[str, Any]) -> None:
    with pytest.raises(AttributionError, match=r"base values.*row 3"):
        explain(env, "test.nan_base")
    with pytest.raises(AttributionError, match=r"standard errors.*rows 2, 5.*'e', 'b'"):
        explain(env, "test.inf_errors")


def test_an_explanation_built_by_hand_is_refused_too() -> None:
    with pytest.raises(AttributionError, match="'hand'"):
        Explanation("hand", np.full((2, 3, 1), np.nan), None, (), ("y",), np.zeros((2, 1)),
                    np.zeros((2, 3)))
    assert issubclass(AttributionError, xaudit.XauditError)
    assert not issubclass(AttributionError, InputError)  # the explainer is at fault, not inputs


PLUGIN = '''\
import numpy as np

from xaudit import Attribution, Explainer, hookimpl


class AllNan(Explainer):
    name = "test.all_nan"

    def explain(self, model, X, *, background, targets, rng):
        return Attribution(values=np.full((X.shape[0], X.shape[1], targets.n_slots), np.nan))


@hookimpl
def xaudit_register_explainers(registry):
    registry.add(AllNan)
'''

MODELS = '''\
from sklearn.linear_model import LinearRegression


def linear(data):
    return LinearRegression().fit(data.X_train, data.y_train)
'''


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str, str]]:
    tag = uuid.uuid4().hex
    plugin, models = f"xaudit_nan_plugin_{tag}", f"xaudit_nan_models_{tag}"
    (tmp_path / f"{plugin}.py").write_text(PLUGIN)
    (tmp_path / f"{models}.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path, plugin, models
    sys.modules.pop(plugin, None)
    sys.modules.pop(models, None)


def test_a_nan_explainer_crashes_with_exit_3_and_the_others_are_written(
        workspace: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    from xaudit.cli import main

    root, plugin, models = workspace
    gate = {"threshold": 0.5}
    suite = {
        "name": "nan-explainer", "seed": 1,
        "model": {"factory": f"{models}:linear"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 5}, "background": {"n": 10}},
        "explainers": [{"id": "nan", "method": "test.all_nan"},
                       {"id": "abl", "method": "ablation"}],
        "checks": [{"check": "model_randomization", "explainer": "nan", "gate": gate},
                   {"check": "deletion", "explainer": "nan", "gate": {"threshold": 0.0}},
                   {"check": "completeness", "explainer": "abl", "gate": {"threshold": 1e-6}}],
        "report": {"formats": ["json", "junit"]},
    }
    path = root / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    out = root / "out"
    assert main(["-p", plugin, "run", "-q", str(path), "--out", str(out)]) == 3
    document = json.loads((out / "results.json").read_text())
    error = document["explainer_errors"]["nan"]
    assert error["type"] == "AttributionError"
    assert "'test.all_nan'" in error["message"]
    assert "50 of 50" in error["message"]
    assert list(document["explanations"]) == ["abl"]
    statuses = {c["name"]: c["status"] for c in document["checks"]}
    assert statuses == {"model_randomization@nan": "error", "deletion@nan": "error",
                        "completeness@abl": "pass"}
    assert "AttributionError" in capsys.readouterr().out


# --------------------------------------------------------------- NaN fails every check


CHECKS: list[tuple[str, dict[str, Any]]] = [
    ("completeness", {}),
    ("deletion", {"steps": 5}),
    ("insertion", {"steps": 5}),
    ("faithfulness_correlation", {"n_runs": 10}),
    ("infidelity", {"n_samples": 10}),
    ("max_sensitivity", {"n_samples": 3}),
    ("avg_sensitivity", {"n_samples": 3}),
    ("model_randomization", {}),
    ("stability", {"repeats": 2, "top_k": 0}),
    ("agreement", {}),
]


def assert_fails_every_gate(result: Any) -> None:
    """NaN, a reason, and a failed gate whichever way the gate reads."""
    assert math.isnan(result.value), (result.check, result.value, result.details)
    assert result.status == "fail"
    for direction in ("lower", "higher"):
        assert gate_status(result.value, 0.5, direction) == "fail"  # type: ignore[arg-type]
    assert isinstance(result.details.get("undefined"), str), result.details
    assert result.verdict().endswith(f"; {result.details['undefined']}")  # logs and JUnit


def run(env: dict[str, Any], name: str, explanation: Explanation, model: Any = None,
        reference: Explanation | None = None, **params: Any) -> Any:
    host = env["host"]
    direction = host.checks.get(name).direction
    threshold = 0.5 if direction == "lower" else -1.0  # a bar every defined value would clear
    return xaudit.check(name, linear(WEIGHTS) if model is None else model, explanation,
                        host=host, gate=GateSpec(threshold=threshold), background=env["bg"],
                        reference=reference, **params)


@pytest.mark.parametrize(("name", "params"), CHECKS)
def test_nan_attributions_fail_every_check(env: dict[str, Any], name: str,
                                           params: dict[str, Any]) -> None:
    """An explanation whose values became NaN after it was built (read from elsewhere, or
    re-explained as NaN) fails: its re-explanations are NaN too (method ``test.nan``)."""
    e = explain(env, "test.occlude")
    e.method = "test.nan"
    e.values = np.full_like(e.values, np.nan)
    reference = explain(env, "test.occlude") if name == "agreement" else None
    result = run(env, name, e, reference=reference, **params)
    assert_fails_every_gate(result)
    assert "not finite" in result.details["undefined"]


def half_zero(env: dict[str, Any]) -> Explanation:
    e = explain(env, "test.occlude")
    e.values[1::2] = 0.0  # every other row: a constant (zero) map
    return e


UNDEFINED: list[tuple[str, dict[str, Any], str, str]] = [
    # check, params, how the statistic is made undefined, words of the reason
    ("completeness", {}, "no rows", "no rows"),
    ("deletion", {"steps": 5}, "zero", "rank no feature"),
    ("insertion", {"steps": 5}, "zero", "rank no feature"),
    ("deletion", {"steps": 5}, "flat model", "flat"),
    ("faithfulness_correlation", {"n_runs": 10}, "half zero", "constant"),
    ("faithfulness_correlation", {"n_runs": 10}, "flat model", "output"),
    ("infidelity", {"n_samples": 10}, "no rows", "no rows"),
    ("max_sensitivity", {"n_samples": 3}, "zero", "zero"),
    ("avg_sensitivity", {"n_samples": 3}, "zero", "zero"),
    ("model_randomization", {}, "flat model", "constant"),
    ("stability", {"repeats": 2, "top_k": 0}, "zero", "constant"),
    ("agreement", {}, "zero reference", "constant"),
    ("agreement", {"metric": "top_k_overlap"}, "zero reference", "constant"),
]


@pytest.mark.parametrize(("name", "params", "how", "reason"), UNDEFINED,
                         ids=[f"{c}-{h}" for c, _, h, _ in UNDEFINED])
def test_an_undefined_statistic_fails_with_its_reason(env: dict[str, Any], name: str,
                                                      params: dict[str, Any], how: str,
                                                      reason: str) -> None:
    model, reference = None, None
    if how == "zero":
        e = explain(env, "test.zero")
    elif how == "half zero":
        e = half_zero(env)
    elif how == "flat model":  # f = 0: the occlusion map is zero, the randomized copy's is not
        model = linear(np.zeros(D))
        e = explain(env, "test.occlude", model)
    elif how == "zero reference":
        e, reference = explain(env, "test.occlude"), explain(env, "test.zero")
    else:
        full = explain(env, "test.occlude")
        e = Explanation("test.occlude", full.values[:0], full.base_values[:0],
                        full.feature_names, full.output_names, full.target_indices[:0],
                        full.inputs[:0])
    result = run(env, name, e, model=model, reference=reference, **params)
    assert_fails_every_gate(result)
    assert reason in result.details["undefined"]


def test_the_undefined_rows_are_named_and_the_defined_ones_kept(env: dict[str, Any]) -> None:
    """Half the rows have a zero map: scipy's Pearson is NaN there (the oracle for which rows
    are undefined); the mean over the other rows is kept in the details, not gated."""
    e = half_zero(env)
    result = run(env, "faithfulness_correlation", e, n_runs=10)
    assert_fails_every_gate(result)
    undefined = [r for r in range(N) if np.ptp(e.values[r, :, 0]) == 0]
    assert undefined == list(range(1, N, 2))
    with pytest.warns(stats.ConstantInputWarning):
        assert math.isnan(stats.pearsonr(e.values[1, :, 0], np.arange(D)).statistic)
    assert result.details["undefined_rows"] == undefined
    assert np.isnan(result.values[undefined]).all()
    defined = np.setdiff1d(np.arange(N), undefined)
    assert np.isfinite(result.values[defined]).all()
    assert result.details["mean_over_defined_rows"] == pytest.approx(
        float(np.mean(result.values[defined])))
    assert f"{len(undefined)} of {N} rows" in result.details["undefined"]


def test_defined_statistics_are_unchanged(env: dict[str, Any]) -> None:
    """The exact linear explanation: completeness error 0 and a finite, passing agreement."""
    e = explain(env, "test.occlude")
    result = run(env, "completeness", e)
    assert result.status == "pass"
    assert result.value == pytest.approx(0.0, abs=1e-12)
    assert "undefined" not in result.details
    agree = run(env, "agreement", e, reference=explain(env, "test.occlude"))
    assert agree.value == pytest.approx(1.0)
    assert agree.status == "pass"


# --------------------------------------------------------------- subset_size is validated


@pytest.mark.parametrize(("name", "params"), [
    ("faithfulness_correlation", {"subset_size": 6}),
    ("faithfulness_correlation", {"subset_size": 5}),
    ("infidelity", {"perturbation": "subset", "subset_size": 6}),
])
def test_a_subset_larger_than_the_features_is_refused_before_work(
        env: dict[str, Any], name: str, params: dict[str, Any]) -> None:
    e = explain(env, "test.occlude")
    counted = CountingModel(linear(WEIGHTS))
    with pytest.raises(InputError) as info:
        xaudit.check(name, counted, e, host=env["host"], **params)
    message = str(info.value)
    assert f"subset_size {params['subset_size']}" in message
    assert f"{D} features" in message
    assert counted.calls == 0


def test_infidelity_takes_every_feature_as_one_subset(env: dict[str, Any]) -> None:
    """``subset_size == d``: the one perturbation ``I = x - 0``, so the value is the closed form
    ``mean_rows (I . phi - (f(x) - f(0)))^2``."""
    e = explain(env, "test.occlude")
    result = xaudit.check("infidelity", linear(WEIGHTS), e, host=env["host"],
                          perturbation="subset", subset_size=D, normalize=False, n_samples=3)
    X = env["X"]
    expected = np.mean(((X * e.values[..., 0]).sum(axis=1) - X @ WEIGHTS) ** 2)
    assert result.value == pytest.approx(expected, rel=1e-12)
