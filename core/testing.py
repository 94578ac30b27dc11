"""Conformance kit for plugin authors: run xaudit's contract checks on your explainer or check.

One line in a plugin's test suite::

    import pytest
    from xaudit.testing import explainer_checks

    @pytest.mark.parametrize("name, run", explainer_checks(MyExplainer))
    def test_conformance(name, run):
        run()

Each check raises ``AssertionError`` with a message that says which part of the contract is
broken. Without a model the kit chooses a fixture from what the explainer declares
(:func:`~xaudit.testing_fixtures.fixture_for`: a linear function, a random forest, a torch MLP,
CNN or token model, raw strings); pass ``fixture=`` for another of
:func:`~xaudit.testing_fixtures.fixtures_for`, or ``model``, ``X`` and ``background`` (and
``y``) for a model of your own. A case the explainer opts out of
(:attr:`~xaudit.plugin.Explainer.conformance_opt_outs`) is skipped with its reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from pydantic import ValidationError

from .api import explain
from .explanation import Explanation
from .hookspecs import hookimpl
from .host import Host, create_host
from .plugin import Check, Explainer, class_problems
from .registry import Registry
from .testing_fixtures import Fixture, fixture_for, fixtures_for, linear_fixture

__all__ = [
    "EXPLAINER_CASES", "ConformanceCase", "ExplainerCase", "Fixture", "Subject",
    "check_is_well_formed", "explainer_checks", "fixture_for", "fixtures_for", "linear_fixture",
]

ConformanceCase = tuple[str, Callable[[], None]]


@dataclass
class Subject:
    """What one case checks: an explainer class with its parameters, on a fixture."""

    cls: type[Explainer]
    fixture: Fixture
    params: dict[str, Any]
    host: Host

    def explain(self, seed: int = 0, target: Any = "all") -> Explanation:
        """Explain the fixture's rows as a user would, through :func:`xaudit.explain`."""
        fixture = self.fixture
        return explain(fixture.model, fixture.X, self.cls.name, background=fixture.background,
                       seed=seed, target=target, host=self.host, y=fixture.y, **self.params)

    @cached_property
    def explained(self) -> Explanation:
        """:meth:`explain` with its defaults, computed once for the cases that only read it."""
        return self.explain()


@dataclass(frozen=True)
class ExplainerCase:
    """One part of the explainer contract: ``check`` raises ``AssertionError`` if it is broken."""

    name: str
    check: Callable[[Subject], None]


def _host_with(cls: type[Explainer]) -> Host:
    host = create_host(autoload=False)
    if cls.name in host.explainers:
        return host

    class _Plugin:
        @hookimpl
        def xaudit_register_explainers(self, registry: Registry[Explainer]) -> None:
            registry.add(cls)

    return create_host(plugins=[_Plugin()], autoload=False)


def explainer_checks(
    cls: type[Explainer],
    model: object | None = None,
    X: np.ndarray | None = None,
    background: np.ndarray | None = None,
    params: dict[str, Any] | None = None,
    *,
    y: np.ndarray | None = None,
    fixture: Fixture | None = None,
) -> list[ConformanceCase]:
    """``(name, run)`` pairs checking ``cls`` against the explainer contract.

    The data is ``model`` with ``X`` and ``background`` (and ``y``) when given, else
    ``fixture``, else :func:`~xaudit.testing_fixtures.fixture_for` ``(cls)``. ``params`` are
    the explainer's parameters, over the fixture's model-specific ones. A case named in
    ``cls.conformance_opt_outs`` runs ``pytest.skip`` with its reason; an opt-out naming no
    case, or giving no reason, is a ``ValueError``.
    """
    opt_outs = _opt_outs(cls)
    host = _host_with(cls)
    if model is not None:
        if X is None or background is None:
            raise ValueError("pass X and background together with model")
        fixture = Fixture("given", host.adapt(model), np.asarray(X), np.asarray(background),
                          None if y is None else np.asarray(y))
    elif fixture is None:
        fixture = fixture_for(cls)
    subject = Subject(cls, fixture, {**fixture.params_for(cls), **(params or {})}, host)
    return [(case.name, _bind(case, subject, opt_outs.get(case.name)))
            for case in EXPLAINER_CASES]


def _opt_outs(cls: type[Explainer]) -> dict[str, str]:
    opt_outs = dict(cls.conformance_opt_outs)
    names = {case.name for case in EXPLAINER_CASES}
    unknown = sorted(set(opt_outs) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}.conformance_opt_outs names no kit case: "
                         f"{', '.join(unknown)}; the cases are {', '.join(sorted(names))}")
    blank = sorted(name for name, reason in opt_outs.items()
                   if not isinstance(reason, str) or not reason.strip())
    if blank:
        raise ValueError(f"{cls.__name__}.conformance_opt_outs gives no reason for "
                         f"{', '.join(blank)}")
    return opt_outs


def _bind(case: ExplainerCase, subject: Subject, opt_out: str | None) -> Callable[[], None]:
    if opt_out is None:
        return lambda: case.check(subject)

    def skip() -> None:
        import pytest

        pytest.skip(f"{subject.cls.name} opts out of {case.name}: {opt_out}")

    return skip


def _class_is_well_formed(subject: Subject) -> None:
    problems = class_problems(subject.cls, Explainer)
    assert not problems, "; ".join(problems)


def _params_forbid_unknown(subject: Subject) -> None:
    try:
        subject.cls.Params.model_validate({"surely_not_a_parameter": 1})
    except ValidationError:
        return
    raise AssertionError(f"{subject.cls.__name__}.Params accepted an unknown field")


def _values_follow_schema(subject: Subject) -> None:
    exp = subject.explained
    meta = exp.metadata
    X, m = subject.fixture.X, len(subject.fixture.model.output_names)
    n, shape = X.shape[0], X.shape[1:]
    if exp.handoff.kind == "global":  # one row per repeat, slots named by the method or targets
        n = exp.values.shape[0]
        m = len(meta.get("output_names") or ()) or m
    if meta.get("feature_names"):  # values over units the method names (tokens, layer units)
        units = exp.values.shape[1:-1]
        assert int(np.prod(units)) == len(meta["feature_names"]), (
            f"values shaped {exp.values.shape} have {int(np.prod(units))} units, but "
            f"metadata['feature_names'] names {len(meta['feature_names'])}")
        shape = units
    assert exp.values.shape == (n, *shape, m), (
        f"values shaped {exp.values.shape}, expected {(n, *shape, m)} for target='all'"
    )
    assert np.all(np.isfinite(exp.values)), "values contain NaN or infinity"
    if exp.base_values is not None:
        assert exp.base_values.shape == (n, m), f"base_values shaped {exp.base_values.shape}"
    if exp.std_errors is not None:
        assert np.all(exp.std_errors >= 0), "standard errors must be non-negative"
    json.dumps(exp.metadata)


def _targets_select_slots(subject: Subject) -> None:
    every = subject.explained
    last = subject.explain(target=-1)
    assert last.values.shape[-1] == 1, "a single target must give one output slot"
    np.testing.assert_allclose(last.values[..., 0], every.values[..., -1], rtol=1e-7,
                               atol=1e-9, err_msg="target=-1 differs from slot -1 of 'all'"
                               " (for stochastic methods: same seed expected to agree)")


def _same_seed_same_values(subject: Subject) -> None:
    first, second = subject.explain(seed=3), subject.explain(seed=3)
    np.testing.assert_array_equal(first.values, second.values,
                                  err_msg="the same seed must give identical values")


def _inputs_not_modified(subject: Subject) -> None:
    fixture = subject.fixture
    X, background = fixture.X.copy(), fixture.background.copy()
    subject.explain()
    np.testing.assert_array_equal(fixture.X, X, err_msg="explain modified X")
    np.testing.assert_array_equal(fixture.background, background,
                                  err_msg="explain modified the background")


def _additive_is_complete(subject: Subject) -> None:
    if not subject.cls.additive:
        return
    exp = subject.explained
    assert exp.base_values is not None, "an additive method must give base values"
    outputs = subject.fixture.model.predict(subject.fixture.X)
    axes = tuple(range(1, exp.values.ndim - 1))
    np.testing.assert_allclose(exp.values.sum(axis=axes) + exp.base_values, outputs,
                               rtol=1e-6, atol=1e-6,
                               err_msg="attributions + base value != model output")


def _round_trips(subject: Subject) -> None:
    exp = subject.explained
    record, arrays = exp.to_record()
    back = Explanation.from_record(json.loads(json.dumps(record)), arrays)
    np.testing.assert_array_equal(back.values, exp.values)
    assert back.params == exp.params, "params must survive JSON (use JSON-ready types)"
    assert back.handoff == exp.handoff, "the hand-off must survive results.json and arrays.npz"


EXPLAINER_CASES: tuple[ExplainerCase, ...] = (
    ExplainerCase("class_is_well_formed", _class_is_well_formed),
    ExplainerCase("params_forbid_unknown_fields", _params_forbid_unknown),
    ExplainerCase("values_follow_the_result_schema", _values_follow_schema),
    ExplainerCase("targets_select_output_slots", _targets_select_slots),
    ExplainerCase("same_seed_same_values", _same_seed_same_values),
    ExplainerCase("inputs_are_not_modified", _inputs_not_modified),
    ExplainerCase("additive_methods_are_complete", _additive_is_complete),
    ExplainerCase("explanation_round_trips", _round_trips),
)
"""The explainer contract, case by case, in the order :func:`explainer_checks` runs them."""


def check_is_well_formed(cls: type[Check]) -> None:
    """Raise ``AssertionError`` if ``cls`` would be refused by the check registry."""
    problems = class_problems(cls, Check)
    assert not problems, "; ".join(problems)
