"""The conformance kits catch what they promise to catch, case by case (issue 18).

Each broken plugin below breaks one part of a contract on purpose; the kit must fail exactly
the case for that part (or the cases that depend on it) and pass a correct plugin. The
explainer kit's target case, its shape messages, readable test ids, skips and per-case failures
of malformed classes are here too; ``test_conformance_kit.py`` has its older cases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import ConfigDict

from xaudit import Attribution, CheckOutcome, Explainer, ModelBase, PluginParams, ReportSection
from xaudit.model import InputSpec, sha256_of_arrays
from xaudit.plugin import Check
from xaudit.plugins.checks.completeness import Completeness
from xaudit.testing import (
    Case,
    adapter_checks,
    check_checks,
    explainer_checks,
    section_checks,
)
from xaudit.testing.checks import CHECK_CASES

pytest_plugins = ["pytester"]


def outcomes(cases: Sequence[Case]) -> dict[str, str]:
    """Each case's result: ``pass``, ``skip`` or the failure's message."""
    found = {}
    for case in cases:
        try:
            case()
        except pytest.skip.Exception:
            found[case.name] = "skip"
        except Exception as failure:  # AssertionError and the crashes the kit lets through
            found[case.name] = f"{type(failure).__name__}: {failure}"
        else:
            found[case.name] = "pass"
    return found


def failed(cases: Sequence[Case]) -> set[str]:
    return {name for name, result in outcomes(cases).items() if result not in ("pass", "skip")}


# --------------------------------------------------------------------------------------------
# The explainer kit


class _Ones(Explainer):
    name = "test.ones"

    def explain(self, model, X, *, background, targets, rng):  # type: ignore[no-untyped-def]
        return Attribution(values=np.ones((*X.shape, targets.n_slots)))


class IgnoresTarget(Explainer):
    """Right shape, but every slot explains output 0 (occlusion against the background mean)."""

    name = "test.ignores_target"

    def explain(self, model, X, *, background, targets, rng):  # type: ignore[no-untyped-def]
        mean, out = background.mean(axis=0), model.predict(X)[:, 0]
        values = np.stack([out - model.predict(np.where(np.arange(X.shape[1]) == i, mean, X))[
            :, 0] for i in range(X.shape[1])], axis=1)
        return Attribution(values=np.repeat(values[..., None], targets.n_slots, axis=-1))


class Transposed(_Ones):
    name = "test.transposed"

    def explain(self, model, X, *, background, targets, rng):  # type: ignore[no-untyped-def]
        return Attribution(values=np.ones((X.shape[0], targets.n_slots, X.shape[1])))


class LooseParams(PluginParams):
    model_config = ConfigDict(extra="allow")


class Loose(_Ones):
    name = "test.loose"
    Params = LooseParams


def test_an_explainer_that_ignores_the_target_fails_one_case() -> None:
    results = outcomes(explainer_checks(IgnoresTarget))
    assert {name for name, r in results.items() if r not in ("pass", "skip")} == {
        "outputs_are_told_apart"}
    assert ("gives the same values for outputs 'y0' and 'y1', whose predictions differ"
            in results["outputs_are_told_apart"])


def test_a_wrong_shape_prints_expected_and_actual() -> None:
    results = outcomes(explainer_checks(Transposed))
    assert "values: expected (6, 4, 2), got (6, 2, 4)" in results[
        "values_follow_the_result_schema"]


def test_a_malformed_class_fails_per_case_and_is_named_by_its_class() -> None:
    cases = explainer_checks(Loose)  # collecting never raises
    results = outcomes(cases)
    assert "Loose.Params must forbid extra fields" in results["class_is_well_formed"]
    assert results["params_forbid_unknown_fields"].startswith("AssertionError")
    assert "Loose is malformed, so it cannot be run" in results["same_seed_same_values"]
    assert not any(" object at 0x" in r for r in results.values())


def test_cases_that_do_not_apply_are_skipped_with_the_reason() -> None:
    results = outcomes(explainer_checks(_Ones))
    assert results["additive_methods_are_complete"] == "skip"
    with pytest.raises(pytest.skip.Exception, match="_Ones is not additive"):
        dict(explainer_checks(_Ones))["additive_methods_are_complete"]()


KIT_TESTS = """
import pytest
from xaudit.testing import explainer_checks, parametrize_explainer_checks
from test_kits import _Ones

@pytest.mark.parametrize("case", parametrize_explainer_checks(_Ones))
def test_conformance(case):
    case()

@pytest.mark.parametrize(("name", "run"), explainer_checks(_Ones))
def test_pairs(name, run):
    run()
"""


def test_test_ids_are_readable(pytester: pytest.Pytester,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    # a subprocess: an in-process run unloads the modules it imported (sklearn's included),
    # which breaks later tests in this process
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    pytester.makepyfile(test_ids=KIT_TESTS)
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    ids = [line for line in result.outlines if "::" in line]
    assert "test_ids.py::test_conformance[values_follow_the_result_schema]" in ids
    assert "test_ids.py::test_pairs[values_follow_the_result_schema-on_linear]" in ids
    assert not any("lambda" in line for line in ids)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(
        passed=14, skipped=2, failed=2)  # _Ones: the same value for every output


# --------------------------------------------------------------------------------------------
# The check kit


class _Check(Check):
    direction = "lower"
    name = "test.check"

    def run(self, model, explanation, data, rng):  # type: ignore[no-untyped-def]
        error = np.abs(explanation.values.sum(axis=1) + explanation.base_values
                       - model.predict(explanation.inputs)).max(axis=1)
        return CheckOutcome(float(error.mean()), values=error, details=self.details())

    def details(self) -> dict[str, Any]:
        return {"rows": 6}


class NaNValue(_Check):
    def run(self, model, explanation, data, rng):  # type: ignore[no-untyped-def]
        return CheckOutcome(float("nan"))


class ShortValues(_Check):
    def run(self, model, explanation, data, rng):  # type: ignore[no-untyped-def]
        return CheckOutcome(0.0, values=np.zeros(3))


class NotJson(_Check):
    def details(self) -> dict[str, Any]:
        return {"model": object()}


class Unseeded(_Check):
    """The right error plus a little unseeded noise: only seed determinism may fail (noise
    as large as the error would make the direction case fail at random)."""

    def run(self, model, explanation, data, rng):  # type: ignore[no-untyped-def]
        exact = super().run(model, explanation, data, rng)
        noise = np.random.default_rng().uniform(0.0, 1e-6, size=explanation.n_rows)
        return CheckOutcome(exact.value + float(noise.mean()), values=exact.values + noise)


class ZeroesInPlace(_Check):
    def run(self, model, explanation, data, rng):  # type: ignore[no-untyped-def]
        explanation.values[...] = 0.0
        return super().run(model, explanation, data, rng)


class Rebinds(_Check):
    def run(self, model, explanation, data, rng):  # type: ignore[no-untyped-def]
        explanation.values = np.zeros_like(explanation.values)
        return super().run(model, explanation, data, rng)


class UpsideDown(_Check):
    direction = "higher"  # an error declared as a score


class CrashesOnConstant(_Check):
    def run(self, model, explanation, data, rng):  # type: ignore[no-untyped-def]
        values = explanation.values
        return CheckOutcome(1.0 / float(np.ptp(values)))


@pytest.mark.parametrize(("cls", "broken"), [
    (_Check, set()),
    (Completeness, set()),
    (NaNValue, {"direction_prefers_the_exact_explanation"}),
    (ShortValues, {"values_are_one_per_row", "constant_explanation_is_handled",
                   "result_round_trips"}),
    (NotJson, {"details_are_json_ready", "result_round_trips"}),
    (Unseeded, {"same_seed_same_outcome"}),
    (UpsideDown, {"direction_prefers_the_exact_explanation"}),
    (CrashesOnConstant, {"constant_explanation_is_handled",
                         "direction_prefers_the_exact_explanation"}),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_the_check_kit_fails_the_broken_part(cls: type[Check], broken: set[str]) -> None:
    assert failed(check_checks(cls)) == broken


def test_nan_on_the_exact_explanation_is_reported() -> None:
    results = outcomes(check_checks(NaNValue))
    assert results["value_is_a_number"] == "pass"  # NaN is a legal value...
    assert "the value on the exact Shapley values is NaN" in results[
        "direction_prefers_the_exact_explanation"]  # ...but not where the answer is known


@pytest.mark.parametrize("cls", [ZeroesInPlace, Rebinds], ids=lambda c: c.__name__)
def test_the_check_kit_catches_a_modified_explanation(cls: type[Check]) -> None:
    results = outcomes(check_checks(cls))
    assert "the check changed the explanation it measures" in results[
        "explanation_is_not_modified"]
    assert results["class_is_well_formed"] == "pass"


def test_the_check_kit_names_the_field() -> None:
    results = outcomes(check_checks(ShortValues))
    assert ("values: expected one number per explained row, shape (6,), got float64 shaped "
            "(3,)") in results["values_are_one_per_row"]
    assert "details['model'] is a builtins.object" in outcomes(check_checks(NotJson))[
        "details_are_json_ready"]


def test_check_opt_outs_skip_with_their_reason() -> None:
    class Robust(UpsideDown):
        conformance_opt_outs: ClassVar[dict[str, str]] = {
            "direction_prefers_the_exact_explanation": "measures robustness"}

    results = outcomes(check_checks(Robust))
    assert results["direction_prefers_the_exact_explanation"] == "skip"
    assert not failed(check_checks(Robust))
    assert len(CHECK_CASES) == len(results)


# --------------------------------------------------------------------------------------------
# The section kit


def _section(folder: Path, template: str, context: Callable[[Any], Any] | None = None,
             name: str = "test.section") -> type[ReportSection]:
    (folder / "test_section.html.j2").write_text(template)

    class Section(ReportSection):
        title = "Test section"
        template_dir = str(folder)

        def context(self, result):  # type: ignore[no-untyped-def]
            return (context or (lambda r: {"name": r.suite_name,
                                           "methods": [e.method for e in
                                                       r.explanations.values()]}))(result)

    Section.name = name
    Section.template = "test_section.html.j2"
    return Section


GOOD = "<p>{{ ctx.name }}: {{ ctx.methods|join(', ') }}</p>\n"


def test_a_good_section_passes(tmp_path: Path) -> None:
    assert set(outcomes(section_checks(_section(tmp_path, GOOD))).values()) == {"pass"}


def test_the_section_kit_fails_the_broken_part(tmp_path: Path) -> None:
    missing = _section(tmp_path, GOOD)
    missing.template = "nowhere.html.j2"
    results = outcomes(section_checks(missing))
    assert "list it as package data in pyproject.toml" in results["template_is_found"]
    for folder in ("unsafe", "page", "empty"):
        (tmp_path / folder).mkdir()
    unsafe = _section(tmp_path / "unsafe", "<p>{{ ctx.name|safe }}</p>")
    assert failed(section_checks(unsafe)) == {"escapes_hostile_strings"}
    page = _section(tmp_path / "page", "<html><body>" + GOOD + "</body></html>")
    assert failed(section_checks(page)) == {"template_emits_only_its_body"}
    fragile = _section(tmp_path / "empty", GOOD, lambda r: {
        "name": r.suite_name, "methods": [next(iter(r.explanations.values())).method]})
    assert failed(section_checks(fragile)) == {"renders_on_an_empty_result"}


def test_the_section_kit_takes_a_result_with_the_data_a_section_needs(tmp_path: Path) -> None:
    only_with = _section(tmp_path, GOOD, lambda r: None if not r.checks else {
        "name": "checked", "methods": []})
    assert outcomes(section_checks(only_with))["renders_on_a_full_result"] == "pass"
    from xaudit.testing import sample_result

    made: list[Any] = []
    lazy = section_checks(only_with, result=lambda: made.append(1) or sample_result(empty=True))
    assert not made  # made when a case needs it
    assert outcomes(lazy)["renders_on_a_full_result"] == "skip"  # returned None: n/a


def test_a_builtin_section_passes() -> None:
    from xaudit.reports.sections_model import DataSection

    assert not failed(section_checks(DataSection))


# --------------------------------------------------------------------------------------------
# The adapter kit


def test_the_sklearn_adapter_passes_with_its_trees() -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    from xaudit.adapters.sklearn.adapter import SklearnAdapter

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    model = GradientBoostingRegressor(n_estimators=5, max_depth=2, random_state=0).fit(
        X, X[:, 0] * X[:, 1])
    results = outcomes(adapter_checks(SklearnAdapter, model, X[:8]))
    assert results["tree_structure_reproduces_predictions"] == "pass"
    assert results["randomization_gives_new_models"] == "pass"
    assert {name for name, r in results.items() if r == "skip"} == {
        "gradients_match_finite_differences", "layers_are_listed_and_hookable"}
    assert not failed(adapter_checks(SklearnAdapter, model, X[:8]))


def test_the_torch_adapter_passes_with_its_gradients_and_layers() -> None:
    from xaudit.adapters.torch.adapter import TorchAdapter
    from xaudit.testing import networks

    module = networks.seeded(networks.TabularNet, seed=0)
    results = outcomes(adapter_checks(TorchAdapter, module, options={"feature_shape": [4]}))
    assert results["gradients_match_finite_differences"] == "pass"
    assert results["layers_are_listed_and_hookable"] == "pass"
    assert not failed(adapter_checks(TorchAdapter, module, options={"feature_shape": [4]}))


@dataclass(eq=False)
class CubeModel(ModelBase):
    """``f(x) = sum x**3``, claiming gradients; ``slope`` scales what torch_forward returns."""

    slope: float = 1.0
    noise: bool = False
    device: Any = "cpu"
    dtype: Any = None
    input_names: tuple[str, ...] = ("x",)

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        jitter = np.random.default_rng().normal(scale=1e-3) if self.noise else 0.0
        return np.asarray((X**3).sum(axis=1) + jitter)

    def fingerprint(self) -> str:
        return sha256_of_arrays(np.array([self.slope]))

    def to_tensors(self, X: Any) -> tuple[Any, ...]:
        import torch

        return (torch.as_tensor(np.asarray(X, dtype=np.float64)),)

    def torch_forward(self, *inputs: Any) -> Any:
        return (self.slope * inputs[0] ** 3).sum(dim=1, keepdim=True)


def _adapter(**fields: Any) -> type[Any]:
    from xaudit import Adapter

    class CubeAdapter(Adapter):
        name = "test.cube"

        @classmethod
        def claims(cls, obj: object) -> bool:
            return obj == "cube"

        @classmethod
        def load(cls, obj: object, options: Any) -> CubeModel:
            return CubeModel("cube", cls.name, "regression", InputSpec((3,)), ("y",),
                             capabilities=frozenset({"predict", "gradients"}), **fields)

    return CubeAdapter


@pytest.mark.parametrize(("fields", "obj", "broken"), [
    ({}, "cube", set()),
    ({"slope": 2.0}, "cube", {"gradients_match_finite_differences"}),
    ({"noise": True}, "cube", {"predictions_are_deterministic",
                               "gradients_match_finite_differences"}),
    ({}, "sphere", {"claims_the_object"}),
], ids=["correct", "wrong-gradients", "noisy", "not-claimed"])
def test_the_adapter_kit_fails_the_broken_part(fields: dict[str, Any], obj: str,
                                               broken: set[str]) -> None:
    assert failed(adapter_checks(_adapter(**fields), obj)) == broken
