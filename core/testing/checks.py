"""The check kit: xaudit's contract for a :class:`~xaudit.plugin.Check`, case by case.

The check runs, as :func:`xaudit.check` runs it (:func:`~xaudit.engine.prepare_check`), on two
explanations of a tabular fixture (the linear function, or the first of the forest and the
torch MLP whose model offers what the check needs):

* the **exact** one: Shapley values of the marginal game, every coalition evaluated
  (``shap.exact``: complete, deterministic, and on the linear fixture the true attributions
  ``w_i (x_i - E b_i)``);
* a **constant** one (``xaudit_kit.constant``): 1 for every feature and output, base value 0,
  an explanation that says nothing.

The outcome on the exact explanation is checked field by field (a finite-or-NaN value, one
value per explained row, JSON-ready details), for seed determinism, for leaving the explanation
untouched and for surviving ``results.json``; the constant explanation must be handled (a
number or NaN, never a crash), and the exact explanation must score at least as well as the
constant one by the check's declared ``direction``.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from pydantic import ValidationError

from ..api import explain
from ..contracts import details_problems, value_problems, values_problems
from ..engine import MODIFIED, CheckRun, check, prepare_check
from ..errors import PluginError
from ..explanation import Attribution, Explanation
from ..host import Host
from ..model import MODALITIES, Model
from ..plugin import Check, CheckOutcome, Explainer, class_problems
from ..results import AuditResult
from ..targets import TargetSelection
from .cases import Case, CaseSpec, bind, host_with, opt_out_problems, valid_opt_outs
from .fixtures import FIXTURE_KINDS, Fixture

EXACT = "shap.exact"


class ConstantAttribution(Explainer):
    """1 for every feature and output, base value 0: the check kit's uninformative
    explanation."""

    name = "xaudit_kit.constant"
    summary = "Every feature gets 1 for every output (the check kit's uninformative explanation)."
    modalities: ClassVar[frozenset[str]] = MODALITIES

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Ones ``(n, *feature_shape, k)`` with zero base values."""
        return Attribution(values=np.ones((X.shape[0], *X.shape[1:], targets.n_slots)),
                           base_values=np.zeros((X.shape[0], targets.n_slots)))


@dataclass
class CheckSubject:
    """What the check cases check: a class with its parameters, on a fixture chosen on first
    use; the explanations and outcomes are made once and shared by the cases."""

    cls: type[Check]
    params: dict[str, Any]
    fixture_given: Fixture | None = None
    problems: list[str] = field(default_factory=list)
    explanations: dict[str, Explanation] = field(default_factory=dict)

    @cached_property
    def host(self) -> Host:
        """A host with the built-ins, the check and the kit's constant explainer."""
        if self.problems:
            raise AssertionError(f"{self.cls.__name__} is malformed, so it cannot be run "
                                 f"(see class_is_well_formed): {'; '.join(self.problems)}")
        return host_with(self.cls, ConstantAttribution)

    @cached_property
    def fixture(self) -> Fixture:
        """The given fixture, else the first tabular kind whose model meets the check's needs."""
        try:
            instance = self.cls(self.cls.Params.model_validate(self.params))
        except ValidationError as exc:
            raise AssertionError(f"params {self.params} are invalid for "
                                 f"{self.cls.__name__}: {exc}") from None
        candidates = [self.fixture_given] if self.fixture_given is not None else [
            kind.build() for kind in FIXTURE_KINDS if kind.modality == "tabular"]
        for fixture in candidates:
            if not instance.unmet(fixture.model):
                return fixture
        raise AssertionError(f"no kit fixture meets what {self.cls.__name__} needs "
                             f"({', '.join(instance.unmet(candidates[-1].model))}); pass "
                             "fixture= with a model that offers it")

    def explanation(self, method: str) -> Explanation:
        """The fixture's rows explained by ``method`` for every output (made once)."""
        if method not in self.explanations:
            fixture = self.fixture
            self.explanations[method] = explain(fixture.model, fixture.X, method,
                                                background=fixture.background, target="all",
                                                host=self.host)
        return self.explanations[method]

    def prepared(self, method: str) -> CheckRun:
        """The check, ready to run on the ``method`` explanation (with the exact one as its
        reference, for checks that compare two explanations)."""
        fixture = self.fixture
        return prepare_check(self.cls.name, fixture.model, self.explanation(method),
                             host=self.host, background=fixture.background,
                             reference=self.explanation(EXACT), **self.params)

    def run(self, method: str = EXACT, seed: int = 0) -> tuple[CheckOutcome | None, bool]:
        """The raw outcome on the ``method`` explanation (``None`` when the check wrote into
        it), and whether the check tried to modify it."""
        outcome, _, modified = self.prepared(method).run(seed)
        return outcome, modified

    def outcome_on(self, method: str = EXACT, seed: int = 0) -> CheckOutcome:
        """The outcome, or the failure of a check that writes into its explanation."""
        outcome, _ = self.run(method, seed)
        if outcome is None:
            raise AssertionError(f"{MODIFIED} (see explanation_is_not_modified)")
        return outcome

    @cached_property
    def outcome(self) -> CheckOutcome:
        """The outcome on the exact explanation with seed 0 (shared by the field cases)."""
        return self.outcome_on()


CheckCase = CaseSpec[CheckSubject]


def check_checks(cls: type[Check], params: dict[str, Any] | None = None, *,
                 fixture: Fixture | None = None) -> list[Case]:
    """The cases checking ``cls`` against the check contract, as ``(name, run)`` pairs.

    ``params`` are the check's parameters (smaller samples, say); ``fixture`` a tabular
    :class:`~xaudit.testing.fixtures.Fixture` of your own (its model must offer what the check
    needs). A case named in ``cls.conformance_opt_outs`` skips with its reason.
    """
    problems = class_problems(cls, Check) + opt_out_problems(cls, CHECK_CASES)
    subject = CheckSubject(cls, dict(params or {}), fixture, problems)
    return bind(CHECK_CASES, subject, f"on_{fixture.name if fixture else 'tabular'}",
                valid_opt_outs(cls, CHECK_CASES), getattr(cls, "name", cls.__name__))


def _class_is_well_formed(subject: CheckSubject) -> None:
    assert not subject.problems, "; ".join(subject.problems)


def _params_forbid_unknown(subject: CheckSubject) -> None:
    try:
        subject.cls.Params.model_validate({"surely_not_a_parameter": 1})
    except ValidationError:
        return
    raise AssertionError(f"{subject.cls.__name__}.Params accepted an unknown field")


def _asserting(problems: list[str]) -> None:
    assert not problems, "; ".join(problems)


def _value_is_a_number(subject: CheckSubject) -> None:
    _asserting(value_problems(subject.outcome.value))


def _values_one_per_row(subject: CheckSubject) -> None:
    _asserting(values_problems(subject.outcome.values, subject.fixture.X.shape[0]))


def _details_json_ready(subject: CheckSubject) -> None:
    _asserting(details_problems(subject.outcome.details))


def _same_seed_same_outcome(subject: CheckSubject) -> None:
    first, second = subject.outcome_on(seed=3), subject.outcome_on(seed=3)
    message = ("the same seed must give the same {}: draw every random number from the rng "
               "run() receives")
    np.testing.assert_array_equal(first.value, second.value, err_msg=message.format("value"))
    if first.values is not None:
        np.testing.assert_array_equal(first.values, second.values,
                                      err_msg=message.format("per-row values"))


def _explanation_not_modified(subject: CheckSubject) -> None:
    assert not subject.run()[1], MODIFIED


def _constant_handled(subject: CheckSubject) -> None:
    outcome = subject.outcome_on("xaudit_kit.constant")
    _asserting(value_problems(outcome.value) +
               values_problems(outcome.values, subject.fixture.X.shape[0]))


def _prefers_exact(subject: CheckSubject) -> None:
    exact = float(subject.outcome.value)
    constant = float(subject.outcome_on("xaudit_kit.constant").value)
    direction = subject.cls.direction
    assert not math.isnan(exact), "the value on the exact Shapley values is NaN"
    if math.isnan(constant):
        return  # undefined on an explanation that says nothing: fine
    tolerance = 1e-9 * max(1.0, abs(exact), abs(constant))
    better = exact <= constant + tolerance if direction == "lower" else (
        exact >= constant - tolerance)
    assert better, (
        f"direction is {direction!r}, yet the exact Shapley values score {exact:.6g} and a "
        f"constant explanation {constant:.6g}: is the direction declared the wrong way round?")


def _round_trips(subject: CheckSubject) -> None:
    fixture = subject.fixture
    try:
        result = check(subject.cls.name, fixture.model, subject.explanation(EXACT),
                       host=subject.host, background=fixture.background,
                       reference=subject.explanation(EXACT), **subject.params)
    except PluginError as refused:
        raise AssertionError(str(refused)) from None
    audit = AuditResult("kit", {}, {}, {}, checks=[result])
    with tempfile.TemporaryDirectory(prefix="xaudit-kit-") as folder:
        audit.save(folder)
        (back,) = AuditResult.load(folder).checks
    np.testing.assert_array_equal(back.value, result.value)
    if result.values is not None:
        np.testing.assert_array_equal(back.values, result.values)
    assert json.dumps(back.details, sort_keys=True) == json.dumps(
        _plain(result.details), sort_keys=True), "details must survive results.json"
    assert back.handoff == result.handoff, "the hand-off must survive results.json"


def _plain(value: Any) -> Any:
    """``value`` as JSON reads it back (numpy scalars and arrays as numbers and lists)."""
    return json.loads(json.dumps(value, default=lambda o: np.asarray(o).tolist()))


CHECK_CASES: tuple[CheckCase, ...] = (
    CaseSpec("class_is_well_formed", _class_is_well_formed,
             "the registry would accept the class (a `direction`, strict `Params`), and its "
             "`conformance_opt_outs` name kit cases with reasons"),
    CaseSpec("params_forbid_unknown_fields", _params_forbid_unknown,
             "`Params` refuses a field it does not declare"),
    CaseSpec("value_is_a_number", _value_is_a_number,
             "the gated `value` is a float, finite or NaN"),
    CaseSpec("values_are_one_per_row", _values_one_per_row,
             "per-row `values`, when given, hold one finite-or-NaN number per explained row"),
    CaseSpec("details_are_json_ready", _details_json_ready,
             "`details` is a mapping `results.json` can store (the message names the key)"),
    CaseSpec("same_seed_same_outcome", _same_seed_same_outcome,
             "the same seed gives the same value and per-row values (details may hold "
             "timings)"),
    CaseSpec("explanation_is_not_modified", _explanation_not_modified,
             "`run` leaves the explanation's arrays as they were"),
    CaseSpec("constant_explanation_is_handled", _constant_handled,
             "on a constant explanation the check gives a number or NaN, never a crash"),
    CaseSpec("direction_prefers_the_exact_explanation", _prefers_exact,
             "by the declared `direction`, exact Shapley values score at least as well as a "
             "constant explanation"),
    CaseSpec("result_round_trips", _round_trips,
             "the check's result survives `results.json` and `arrays.npz`"),
)
"""The check contract, case by case, in the order :func:`check_checks` runs them."""
