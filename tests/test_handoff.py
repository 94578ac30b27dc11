"""Typed hand-offs (``xaudit.handoff``): shape checks, the saved form and the schema version.

Every record is built by hand with known arrays, saved through ``AuditResult.save`` and read
back; equality is checked field by field against the arrays the test made, not against a
previous output. Malformed hand-offs must be refused where they are made and where they are
loaded, with the field named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xaudit import Attribution, Explainer
from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.handoff import (
    Area,
    Band,
    ChangeReason,
    CheckHandoff,
    Counterfactuals,
    Curve,
    Handoff,
    PairDependence,
    PartialDependence,
    Series,
    SurrogateFit,
)
from xaudit.results import RESULTS_FILE, SCHEMA_VERSION, AuditResult, CheckResult
from xaudit.testing import explainer_checks

N, D, K = 4, 3, 2
RNG = np.random.default_rng(7)


def full_handoff() -> Handoff:
    """A hand-off with every field filled, for ``N`` rows of ``D`` features and ``K`` slots."""
    grid = np.full((D, 5), np.nan)
    grid[:, :4] = np.linspace(-1.0, 1.0, 4)
    pair_grids = RNG.normal(size=(1, 2, 3))
    return Handoff(
        kind="effect",
        outputs=RNG.normal(size=(N, K)),
        surrogate=SurrogateFit(RNG.uniform(size=(N, K)), RNG.normal(size=(N, K))),
        partial_dependence=PartialDependence(
            grid, RNG.normal(size=(D, 5, K)), (0, 2), individual=RNG.normal(size=(N, D, 5, K)),
            pairs=PairDependence(((0, 2),), pair_grids, RNG.normal(size=(1, 3, 3, K)))),
        counterfactuals=Counterfactuals(
            RNG.normal(size=(N, 2, D)), RNG.uniform(size=(N, 2)) > 0.5,
            RNG.uniform(size=(N, 2)), RNG.normal(size=(N, 2, 3)),
            ((ChangeReason("a", 1.0, 2.0, 0.5),),) + ((),) * (N - 1)),
        tokens=(("the", "<b>film</b>"),) * N,
        marginal=True,
        caveats=("Not an attribution.",),
        inexact_ops=("softmax", "layer_norm"),
    )


def full_curve(area: float = float("nan")) -> Curve:
    x = np.linspace(0.0, 1.0, 6)
    band = Band(x - 0.1, x + 0.1, "mean ± 1.96 s.e.")
    return Curve("Deletion curve", "share removed", "output", x,
                 (Series("explanation", 1 - x), Series("random", x, band)),
                 (Area("under the curve", 0.5), Area("undefined", area)))


def explanation(handoff: Handoff) -> Explanation:
    return Explanation(
        method="test.handoff", values=RNG.normal(size=(N, D, K)), base_values=None,
        feature_names=("a", "b", "c"), output_names=("y0", "y1"),
        target_indices=np.tile([0, 1], (N, 1)), inputs=RNG.normal(size=(N, D)),
        handoff=handoff)


def saved(tmp_path: Path, handoff: Handoff, check: CheckHandoff) -> AuditResult:
    result = AuditResult(
        suite_name="handoff", suite={"name": "handoff"}, model={"name": "m"},
        data={"source": "memory"}, explanations={"e": explanation(handoff)},
        checks=[CheckResult("deletion@e", "deletion", "e", "higher", "pass", value=0.25,
                            threshold=0.0, values=np.arange(N, dtype=np.float64),
                            details={"area": 0.5}, handoff=check)])
    result.save(tmp_path)
    return result


def test_every_field_round_trips_through_results_json_and_arrays_npz(tmp_path: Path) -> None:
    handoff, check = full_handoff(), CheckHandoff((full_curve(),))
    saved(tmp_path, handoff, check)
    loaded = AuditResult.load(tmp_path)
    back, back_check = loaded.explanations["e"].handoff, loaded.checks[0].handoff
    assert back == handoff
    assert back_check == check  # NaN areas compare equal
    assert back.partial_dependence is not None
    assert np.isnan(back.partial_dependence.grid[:, 4]).all()  # the padding survives
    assert back.counterfactuals is not None
    assert back.counterfactuals.valid.dtype == np.bool_
    assert back.counterfactuals.reasons[0] == (ChangeReason("a", 1.0, 2.0, 0.5),)
    assert back.tokens == (("the", "<b>film</b>"),) * N
    assert back.inexact_ops == ("layer_norm", "softmax")  # sorted, once each
    assert np.isnan(back_check.curves[0].areas[1].value)
    document = json.loads((tmp_path / RESULTS_FILE).read_text())
    assert document["schema_version"] == SCHEMA_VERSION == 2
    record = document["explanations"]["e"]["handoff"]
    assert record["kind"] == "effect"
    assert record["outputs"] == {"$array": "handoff.outputs"}
    with np.load(tmp_path / "arrays.npz") as archive:
        np.testing.assert_array_equal(archive["explanations/e/handoff.outputs"], handoff.outputs)
        np.testing.assert_array_equal(archive["checks/deletion@e/handoff.curves.0.x"],
                                      np.linspace(0.0, 1.0, 6))


def test_equality_sees_a_changed_array() -> None:
    a = full_curve(0.5)
    assert a == full_curve(0.5)
    assert a != full_curve(0.75)
    assert Handoff(outputs=np.zeros((2, 1))) != Handoff(outputs=np.ones((2, 1)))


@pytest.mark.parametrize(("handoff", "field"), [
    (Handoff(outputs=np.zeros((N + 1, K))), "handoff.outputs"),
    (Handoff(surrogate=SurrogateFit(np.zeros((N, 1)), np.zeros((N, 1)))), "surrogate.r2"),
    (Handoff(partial_dependence=PartialDependence(np.zeros((D + 1, 4)), np.zeros((D + 1, 4, K)),
                                                  (0,))), "partial_dependence.grid"),
    (Handoff(partial_dependence=PartialDependence(np.zeros((D, 4)), np.zeros((D, 4, K)),
                                                  (D,))), "partial_dependence names features"),
    (Handoff(counterfactuals=Counterfactuals(np.zeros((N, 1, D)), np.ones((N, 1)),
                                             np.zeros((N, 1)), np.zeros((N, 1, 1)), ())),
     "counterfactuals.reasons"),
    (Handoff(tokens=(("a", "b", "c", "d"),) * N), "handoff.tokens"),
])
def test_a_handoff_that_does_not_fit_its_values_is_refused(handoff: Handoff, field: str) -> None:
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        explanation(handoff)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Curve("t", "x", "y", np.arange(3.0), (Series("s", np.arange(4.0)),)),
     "series 's' shaped"),
    (lambda: Curve("t", "x", "y", np.arange(3.0), ()), "has no series"),
    (lambda: Curve("t", "x", "y", np.arange(1.0), (Series("s", np.arange(1.0)),)),
     "at least two points"),
    (lambda: Series("s", np.arange(3.0), Band(np.zeros(2), np.zeros(2), "b")), "band shaped"),
    (lambda: Series("", np.arange(3.0)), "non-empty string"),
    (lambda: Handoff(kind="curve"), "kind must be one of"),
    (lambda: Handoff(caveats="one string"), "tuple of strings"),
    (lambda: Counterfactuals(np.zeros((2, 1, 3)), np.ones((2, 2)), np.zeros((2, 1)),
                             np.zeros((2, 1, 1)), ((), ())), "counterfactuals.valid"),
])
def test_malformed_records_are_refused_when_made(make: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda h: h.update(colour="red"), "unknown field"),
    (lambda h: h.update(outputs={"$array": "handoff.missing"}), r"handoff\.outputs: expected "
                                                                r"an array"),
    (lambda h: h.update(kind="curve"), r"handoff\.kind: expected one of"),
    (lambda h: h["surrogate"].pop("r2"), r"handoff\.surrogate: missing field"),
    (lambda h: h.update(tokens=[["a"], 3, ["c"], ["d"]]), r"handoff\.tokens\.1: expected a list"),
])
def test_a_tampered_results_folder_is_refused_naming_the_field(tmp_path: Path, edit: Any,
                                                               message: str) -> None:
    saved(tmp_path, full_handoff(), CheckHandoff((full_curve(),)))
    path = tmp_path / RESULTS_FILE
    document = json.loads(path.read_text())
    edit(document["explanations"]["e"]["handoff"])
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=message):
        AuditResult.load(tmp_path)


@pytest.mark.parametrize("version", [1, 3])
def test_another_schema_version_is_refused_naming_both(tmp_path: Path, version: int) -> None:
    saved(tmp_path, Handoff(), CheckHandoff())
    path = tmp_path / RESULTS_FILE
    document = json.loads(path.read_text())
    document["schema_version"] = version
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=f"schema version {version}; .* reads version 2 only"):
        AuditResult.load(tmp_path)


class _WrongOutputs(Explainer):
    """Hands the report one row of outputs whatever the number of rows."""

    name = "test.wrong_outputs"

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        values = np.zeros((X.shape[0], X.shape[1], targets.n_slots))
        return Attribution(values, handoff=Handoff(outputs=np.zeros((1, targets.n_slots))))


def test_the_conformance_kit_fails_a_wrongly_filled_handoff() -> None:
    cases = dict(explainer_checks(_WrongOutputs))
    with pytest.raises(InputError, match=r"test\.wrong_outputs: handoff\.outputs shaped"):
        cases["values_follow_the_result_schema"]()
