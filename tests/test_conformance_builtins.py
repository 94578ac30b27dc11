"""The conformance kit on every registered built-in explainer.

As scikit-learn's ``parametrize_with_checks`` runs its checks on every estimator: the host's
registry is enumerated, so a new built-in is checked without touching this file, on the kit's
fixtures chosen from what it declares (``xaudit.testing.fixtures_for``). A built-in for which
the kit has no fixture fails here. Each fixture is built once per session and each explainer's
default explanation once per fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import numpy as np
import pytest

import xaudit
from xaudit.testing import EXPLAINER_CASES, explainer_checks
from xaudit.testing.fixtures import FIXTURE_KINDS, FixtureKind, fixture_kinds_for

HOST = xaudit.create_host(autoload=False)

PARAMS: dict[str, dict[str, Any]] = {
    "counterfactual": {"target_range": [0.0, 1.0], "population": 20, "generations": 5},
    "lime.image": {"n_samples": 100},
    "lime.text": {"n_samples": 300},
    "probing": {"cv": 2},
}
"""What the fixtures cannot imply: the target of a counterfactual on a regression, and smaller
samples (the kit checks the contract, not accuracy); folds that fit six labelled rows."""

NO_FIXTURE = "none"


def _plan() -> list[Any]:
    plan = []
    for name, cls in HOST.explainers.items():
        kinds = [kind.name for kind in fixture_kinds_for(cls)] or [NO_FIXTURE]
        plan += [pytest.param(name, kind, case.name, id=f"{name}-{kind}-{case.name}")
                 for kind in kinds for case in EXPLAINER_CASES]
    return plan


def _kind(name: str) -> FixtureKind:
    return next(kind for kind in FIXTURE_KINDS if kind.name == name)


@cache
def _runs(name: str, kind: str) -> dict[str, Callable[[], None]]:
    fixture = None if kind == NO_FIXTURE else _kind(kind).build()  # none: the kit says why
    return dict(explainer_checks(HOST.explainers.get(name), fixture=fixture,
                                 params=PARAMS.get(name)))


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny networks: torch's thread pool costs more than it saves (and the CPUs are shared)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("name", "kind", "case"), _plan())
def test_builtin_conforms(name: str, kind: str, case: str) -> None:
    _runs(name, kind)[case]()


def test_params_name_registered_explainers() -> None:
    assert set(PARAMS) <= set(HOST.explainers.names())


@pytest.mark.parametrize("kind", FIXTURE_KINDS, ids=lambda kind: kind.name)
def test_fixture_kinds_describe_their_models(kind: FixtureKind) -> None:
    fixture = kind.build()
    spec = fixture.model.input_spec
    assert fixture.model.capabilities == kind.capabilities
    assert spec.modality == kind.modality
    assert fixture.X.shape[1:] == fixture.background.shape[1:] == spec.feature_shape
    assert fixture.y is not None
    assert len(fixture.y) == len(fixture.X)
    assert np.isfinite(fixture.model.predict(fixture.X)).all()
