"""The conformance kit catches broken explainers, honours opt-outs and chooses fixtures.

It runs on every built-in in ``test_conformance_builtins.py``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from xaudit.explanation import Attribution
from xaudit.plugin import Explainer
from xaudit.plugins.checks.completeness import Completeness
from xaudit.plugins.deep.attention import AttentionRollout
from xaudit.plugins.lime.text import LimeText
from xaudit.plugins.perturbation.occlusion import Occlusion
from xaudit.plugins.shapley.tree import TreeShap
from xaudit.testing import check_is_well_formed, explainer_checks, fixture_for
from xaudit.testing.fixtures import fixture_kinds_for


def test_completeness_is_a_well_formed_check() -> None:
    check_is_well_formed(Completeness)


class WrongShape(Explainer):
    name = "test.wrong_shape"

    def explain(self, model, X, *, background, targets, rng):  # type: ignore[no-untyped-def]
        return Attribution(values=np.zeros((X.shape[0], X.shape[1] + 1, targets.n_slots)))


class Unseeded(Explainer):
    name = "test.unseeded"
    stochastic = True

    def explain(self, model, X, *, background, targets, rng):  # type: ignore[no-untyped-def]
        noise = np.random.default_rng().normal(size=(*X.shape, targets.n_slots))
        return Attribution(values=noise)


class FalselyAdditive(Explainer):
    name = "test.falsely_additive"
    additive = True

    def explain(self, model, X, *, background, targets, rng):  # type: ignore[no-untyped-def]
        values = np.ones((*X.shape, targets.n_slots))
        return Attribution(values=values, base_values=np.zeros((X.shape[0], targets.n_slots)))


def _failures(cls: type[Explainer]) -> set[str]:
    failed = set()
    for name, run in explainer_checks(cls):
        try:
            run()
        except pytest.skip.Exception:
            continue
        except (AssertionError, Exception):
            failed.add(name)
    return failed


def test_kit_catches_broken_explainers() -> None:
    assert "values_follow_the_result_schema" in _failures(WrongShape)
    assert "same_seed_same_values" in _failures(Unseeded)
    assert _failures(FalselyAdditive) == {"additive_methods_are_complete",
                                          "outputs_are_told_apart"}


class OptsOut(Unseeded):
    name = "test.opts_out"
    conformance_opt_outs: ClassVar[dict[str, str]] = {
        "same_seed_same_values": "draws from the operating system"}


def test_an_opt_out_is_a_skip_with_its_reason() -> None:
    runs = dict(explainer_checks(OptsOut))
    with pytest.raises(pytest.skip.Exception, match="draws from the operating system"):
        runs["same_seed_same_values"]()
    runs["values_follow_the_result_schema"]()


@pytest.mark.parametrize(("opt_outs", "message"), [
    ({"same_seed": "a reason"}, "names no kit case: same_seed"),
    ({"same_seed_same_values": " "}, "gives no reason for same_seed_same_values"),
])
def test_a_malformed_opt_out_fails_the_class_case(opt_outs: dict[str, str], message: str) -> None:
    malformed = type("Malformed", (Unseeded,), {"name": "test.malformed",
                                                "conformance_opt_outs": opt_outs})
    runs = dict(explainer_checks(malformed))  # collecting never raises
    with pytest.raises(AssertionError, match=message):
        runs["class_is_well_formed"]()


@pytest.mark.parametrize(("cls", "kinds"), [
    (WrongShape, ["linear"]),
    (TreeShap, ["forest"]),
    (Occlusion, ["linear", "image", "tokens"]),
    (AttentionRollout, ["image", "tokens"]),
    (LimeText, ["text"]),
])
def test_fixtures_follow_declared_needs(cls: type[Explainer], kinds: list[str]) -> None:
    assert [kind.name for kind in fixture_kinds_for(cls)] == kinds


def test_an_explainer_without_a_fixture_is_told_what_to_pass() -> None:
    trees_on_images = type("TreesOnImages", (WrongShape,), {
        "name": "test.trees_on_images", "requires": frozenset({"tree_ensemble"}),
        "modalities": frozenset({"image"})})
    with pytest.raises(ValueError, match=r"no fixture for TreesOnImages.*pass model="):
        fixture_for(trees_on_images)
