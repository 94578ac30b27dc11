"""The conformance kit passes on the built-ins and catches broken explainers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from xaudit.explanation import Attribution
from xaudit.plugin import Explainer
from xaudit.plugins.checks.completeness import Completeness
from xaudit.plugins.perturbation.ablation import FeatureAblation
from xaudit.testing import check_is_well_formed, explainer_checks


@pytest.mark.parametrize(("name", "run"), explainer_checks(FeatureAblation))
def test_ablation_conforms(name: str, run: Callable[[], None]) -> None:
    run()


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
        except (AssertionError, Exception):
            failed.add(name)
    return failed


def test_kit_catches_broken_explainers() -> None:
    assert "values_follow_the_result_schema" in _failures(WrongShape)
    assert "same_seed_same_values" in _failures(Unseeded)
    assert _failures(FalselyAdditive) == {"additive_methods_are_complete_on_linear_models"}
