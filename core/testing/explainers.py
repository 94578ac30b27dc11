"""The explainer kit: xaudit's contract for an :class:`~xaudit.plugin.Explainer`, case by case.

Without a model the kit chooses a fixture from what the explainer declares
(:func:`~xaudit.testing.fixtures.fixture_for`: a linear function, a random forest, a torch MLP,
CNN or token model, raw strings); pass ``fixture=`` for another of
:func:`~xaudit.testing.fixtures.fixtures_for`, or ``model``, ``X`` and ``background`` (and
``y``) for a model of your own. The explainer is run as a user runs it, through
:func:`xaudit.explain`, so what the engine refuses at the boundary (:mod:`xaudit.contracts`)
fails here with the same message, e.g. ``values: expected (6, 4, 2), got (6, 2, 4)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from pydantic import ValidationError

from ..api import explain
from ..errors import PluginError
from ..explanation import Explanation
from ..host import Host
from ..plugin import Explainer, class_problems
from .cases import Case, CaseSpec, bind, host_with, opt_out_problems, skip, valid_opt_outs
from .fixtures import Fixture, fixture_for, fixture_kinds_for


@dataclass
class ExplainerSubject:
    """What the explainer cases check: a class with its parameters on a fixture, both made on
    first use (a malformed class or a missing fixture fails the cases that need them)."""

    cls: type[Explainer]
    params: dict[str, Any]
    make_fixture: Callable[[Host], Fixture]
    label: str = ""
    problems: list[str] = field(default_factory=list)
    """What ``class_is_well_formed`` reports: the class's problems and its opt-outs'."""

    @cached_property
    def host(self) -> Host:
        """A host with the built-ins and the class registered."""
        if self.problems:
            raise AssertionError(f"{self.cls.__name__} is malformed, so it cannot be run "
                                 f"(see class_is_well_formed): {'; '.join(self.problems)}")
        return host_with(self.cls)

    @cached_property
    def fixture(self) -> Fixture:
        """The model and rows the explainer runs on."""
        try:
            return self.make_fixture(self.host)
        except ValueError as exc:
            raise AssertionError(str(exc)) from None

    def explain(self, seed: int = 0, target: Any = "all") -> Explanation:
        """Explain the fixture's rows as a user would; a contract the engine refuses is an
        ``AssertionError`` with the engine's message."""
        fixture = self.fixture
        try:
            return explain(fixture.model, fixture.X, self.cls.name,
                           background=fixture.background, seed=seed, target=target,
                           host=self.host, y=fixture.y, **{**fixture.params_for(self.cls),
                                                             **self.params})
        except PluginError as refused:
            raise AssertionError(str(refused)) from None

    @cached_property
    def explained(self) -> Explanation:
        """:meth:`explain` with its defaults, computed once for the cases that only read it."""
        return self.explain()


ExplainerCase = CaseSpec[ExplainerSubject]
"""One part of the explainer contract (kept under its former name)."""


def explainer_checks(
    cls: type[Explainer],
    model: object | None = None,
    X: np.ndarray | None = None,
    background: np.ndarray | None = None,
    params: dict[str, Any] | None = None,
    *,
    y: np.ndarray | None = None,
    fixture: Fixture | None = None,
) -> list[Case]:
    """The cases checking ``cls`` against the explainer contract, as ``(name, run)`` pairs.

    The data is ``model`` with ``X`` and ``background`` (and ``y``) when given, else
    ``fixture``, else :func:`~xaudit.testing.fixtures.fixture_for` ``(cls)``. ``params`` are
    the explainer's parameters, over the fixture's model-specific ones. A case named in
    ``cls.conformance_opt_outs`` skips with its reason; an opt-out naming no case, or giving
    no reason, fails ``class_is_well_formed``. Nothing runs until a case is called.
    """
    if model is not None and (X is None or background is None):
        raise ValueError("pass X and background together with model")

    def make(host: Host) -> Fixture:
        if model is not None:
            return Fixture("given", host.adapt(model), np.asarray(X), np.asarray(background),
                           None if y is None else np.asarray(y))
        return fixture or fixture_for(cls)

    label = _label(cls, model, fixture)
    problems = class_problems(cls, Explainer) + opt_out_problems(cls, EXPLAINER_CASES)
    subject = ExplainerSubject(cls, dict(params or {}), make, label, problems)
    return bind(EXPLAINER_CASES, subject, label, valid_opt_outs(cls, EXPLAINER_CASES),
                getattr(cls, "name", cls.__name__))


def _label(cls: type[Explainer], model: object | None, fixture: Fixture | None) -> str:
    """What the cases run on, for their ``run.__name__``: computed without building it."""
    if model is not None:
        return "on_given"
    if fixture is not None:
        return f"on_{fixture.name}"
    try:
        kinds = fixture_kinds_for(cls)
    except (AttributeError, TypeError):  # a malformed class: class_is_well_formed says why
        kinds = []
    return f"on_{kinds[0].name}" if kinds else "without_fixture"


def _class_is_well_formed(subject: ExplainerSubject) -> None:
    assert not subject.problems, "; ".join(subject.problems)


def _params_forbid_unknown(subject: ExplainerSubject) -> None:
    try:
        subject.cls.Params.model_validate({"surely_not_a_parameter": 1})
    except ValidationError:
        return
    raise AssertionError(f"{subject.cls.__name__}.Params accepted an unknown field")


def _values_follow_schema(subject: ExplainerSubject) -> None:
    exp = subject.explained
    assert np.all(np.isfinite(exp.values)), (
        f"values contain {int(np.count_nonzero(~np.isfinite(exp.values)))} NaN or infinite "
        "number(s)")
    if exp.std_errors is not None:
        assert np.all(exp.std_errors >= 0), "standard errors must be non-negative"
    json.dumps(exp.metadata)


def _targets_select_slots(subject: ExplainerSubject) -> None:
    every = subject.explained
    last = subject.explain(target=-1)
    assert last.values.shape[-1] == 1, (
        f"target=-1 must give one output slot: expected values shaped "
        f"{(*every.values.shape[:-1], 1)}, got {last.values.shape}")
    np.testing.assert_allclose(last.values[..., 0], every.values[..., -1], rtol=1e-7,
                               atol=1e-9, err_msg="target=-1 differs from slot -1 of 'all'"
                               " (for stochastic methods: same seed expected to agree)")


def _outputs_told_apart(subject: ExplainerSubject) -> None:
    exp = subject.explained
    if exp.values.shape[-1] < 2 or (exp.target_indices < 0).any():
        skip("fewer than two output slots that are model outputs: nothing to tell apart")
    outputs = subject.fixture.model.predict(subject.fixture.X)
    names = exp.output_names
    for i in range(exp.values.shape[-1]):
        for j in range(i + 1, exp.values.shape[-1]):
            a, b = exp.target_indices[0, i], exp.target_indices[0, j]
            if np.allclose(outputs[:, a], outputs[:, b]):
                continue
            assert not np.allclose(exp.values[..., i], exp.values[..., j]), (
                f"target='all' gives the same values for outputs {names[i]!r} and "
                f"{names[j]!r}, whose predictions differ: explain() must attribute the output "
                "each slot names (slot j of row r is output targets.indices[r, j]), not always "
                "the same one")


def _same_seed_same_values(subject: ExplainerSubject) -> None:
    first, second = subject.explain(seed=3), subject.explain(seed=3)
    np.testing.assert_array_equal(first.values, second.values,
                                  err_msg="the same seed must give identical values (draw "
                                  "every random number from the rng explain() receives)")


def _inputs_not_modified(subject: ExplainerSubject) -> None:
    fixture = subject.fixture
    X, background = fixture.X.copy(), fixture.background.copy()
    subject.explain()
    np.testing.assert_array_equal(fixture.X, X, err_msg="explain modified X")
    np.testing.assert_array_equal(fixture.background, background,
                                  err_msg="explain modified the background")


def _additive_is_complete(subject: ExplainerSubject) -> None:
    if not subject.cls.additive:
        skip(f"{subject.cls.__name__} is not additive (additive = False): it does not claim "
             "that attributions add up to the output")
    exp = subject.explained
    assert exp.base_values is not None, "an additive method must give base values"
    outputs = subject.fixture.model.predict(subject.fixture.X)
    axes = tuple(range(1, exp.values.ndim - 1))
    np.testing.assert_allclose(exp.values.sum(axis=axes) + exp.base_values,
                               np.take_along_axis(outputs, exp.target_indices, axis=1),
                               rtol=1e-6, atol=1e-6,
                               err_msg="attributions + base value != model output")


def _round_trips(subject: ExplainerSubject) -> None:
    exp = subject.explained
    record, arrays = exp.to_record()
    back = Explanation.from_record(json.loads(json.dumps(record)), arrays)
    np.testing.assert_array_equal(back.values, exp.values)
    assert back.params == exp.params, "params must survive JSON (use JSON-ready types)"
    assert back.handoff == exp.handoff, "the hand-off must survive results.json and arrays.npz"


EXPLAINER_CASES: tuple[ExplainerCase, ...] = (
    CaseSpec("class_is_well_formed", _class_is_well_formed,
             "the registry would accept the class, and its `conformance_opt_outs` name kit "
             "cases with reasons"),
    CaseSpec("params_forbid_unknown_fields", _params_forbid_unknown,
             "`Params` refuses a field it does not declare"),
    CaseSpec("values_follow_the_result_schema", _values_follow_schema,
             "values shaped `(n, *feature_shape, k)` (the message prints expected and actual "
             "shapes), finite; base values `(n, k)`; non-negative standard errors; JSON-ready "
             "metadata; extras arrays"),
    CaseSpec("targets_select_output_slots", _targets_select_slots,
             "`target=-1` gives one slot equal to the last slot of `target=\"all\"` (same seed)"),
    CaseSpec("outputs_are_told_apart", _outputs_told_apart,
             "on a fixture whose outputs differ, `target=\"all\"` gives different values for "
             "different outputs (an explainer that always explains output 0 fails)"),
    CaseSpec("same_seed_same_values", _same_seed_same_values,
             "the same seed gives identical values"),
    CaseSpec("inputs_are_not_modified", _inputs_not_modified,
             "`explain` leaves `X` and the background as they were"),
    CaseSpec("additive_methods_are_complete", _additive_is_complete,
             "for `additive` methods: values plus base value equal the model's output "
             "(skipped for the others)"),
    CaseSpec("explanation_round_trips", _round_trips,
             "the explanation survives `to_record`, JSON and `from_record`"),
)
"""The explainer contract, case by case, in the order :func:`explainer_checks` runs them."""
