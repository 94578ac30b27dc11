"""The execution engine: one explanation, one check, each timed, counted and seeded.

:func:`explain` and :func:`check` are the one code path that produces every explanation and
check result: the public API (:mod:`xaudit.api`) exposes them as they are and the runner
(:mod:`xaudit.runner`) calls them for each entry of a suite. Also here: the model proxy that
counts a check's model calls (:class:`CountingModel`), the feature names a model learns from the
caller (:func:`named_spec`), a gate's verdict (:func:`gate_status`) and an exception as stored
in results (:func:`error_info`). What a plugin returns is checked here, where it returns it
(:mod:`xaudit.contracts`).
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .auto import (
    AUTO,
    CHOICE_KEY,
    Choice,
    choose_method,
    default_background,
    recorded_background,
)
from .blame import definition_site
from .contracts import (
    attribution_problems,
    explanation_digest,
    outcome_problems,
    read_only,
)
from .data import Dataset, default_feature_names
from .errors import InputError, PluginError
from .explanation import Explanation
from .host import Host, default_host
from .model import InputSpec, Model
from .multi_input import PackedModel, pack_inputs, pack_rows
from .plugin import Baseline, Check, CheckContext, CheckOutcome, Direction, ModelCheck, Reexplain
from .progress import Progress
from .randomization import Randomization, RandomizedStage, offered, randomize
from .registry import Registry
from .results import CheckResult, ErrorInfo, Status
from .rowindex import RowIndex
from .seeding import rng_for
from .suite import DocumentationSpec, GateSpec
from .tables import as_rows
from .targets import Target, TargetSelection, pending_predicted, resolve_targets

if TYPE_CHECKING:
    from .executor import Executor


def explain(
    model: object,
    X: Any,
    method: str = AUTO,
    background: Any = None,
    seed: int = 0,
    target: Target | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    host: Host | None = None,
    y: Any = None,
    row_index: Sequence[Any] | RowIndex | None = None,
    progress: bool = False,
    executor: Executor | None = None,
    **params: Any,
) -> Explanation:
    """Explain ``model`` on the rows of ``X`` with the registered ``method``.

    ``y`` gives the labels of the rows of ``X``, for methods that need them
    (``needs_labels``: permutation importance, probing); other methods ignore it.

    ``model`` may be an adapted :class:`Model` or a raw model object (adapted automatically).
    For a multi-input model, ``X`` (and ``background``) is a tuple or mapping of arrays, one
    per input; the explainer sees the inputs packed side by side, and
    :meth:`Explanation.per_input` gives one attribution array per input.
    ``target`` selects outputs: ``"all"``, ``"predicted"``, an index or name, or a list; the
    method's default when ``None``. ``params`` are validated by the method's ``Params`` model.
    ``progress=True`` shows the rows done and the time left on stderr while it runs (see
    :mod:`xaudit.progress`).
    Raises :class:`~xaudit.errors.CapabilityError` before any work if the model lacks what the
    method needs, and :class:`~xaudit.errors.PluginError` naming the field when the explainer
    returns an attribution that breaks the contract
    (:func:`~xaudit.contracts.attribution_problems`).

    ``method="auto"`` (the default) picks the method from the model's capabilities (the rule
    is in :mod:`xaudit.auto`; it takes no ``params``), gives the Shapley methods a background
    drawn from ``X`` when none is given, and records both in ``metadata["method_choice"]``.
    A model that does not fix its row shape (a callable, a torch module whose first layer is a
    convolution) takes it from ``X``. ``row_index`` labels the rows (default: ``X.index`` for
    a pandas DataFrame); the explanation keeps the labels as :attr:`Explanation.row_index`.
    ``executor`` (:mod:`xaudit.executor`) explains the rows of a row-parallel method
    (``row_parallel``) in chunks, here or on a cluster; a global method ignores it.
    """
    host = host or default_host()
    adapted = pack_inputs(host.adapt(model))
    slots = adapted.slots if isinstance(adapted, PackedModel) else ()
    names = (feature_names or _column_names(X) or adapted.input_spec.feature_names) if not (
        slots) else adapted.input_spec.feature_names
    rows = pack_rows(slots, X, adapted.name) if slots else as_rows(X)
    if rows.ndim == len(adapted.input_spec.feature_shape):
        rows = rows[None, ...]
    if not adapted.output_names:
        adapted.predict(rows[:1])  # a callable or a shapeless module binds on its first rows
    choice = _choose(method, adapted, host, params)
    method = choice.method if choice is not None else method
    explainer = host.explainer(method, params)
    host.negotiate(method, adapted)
    spec = named_spec(adapted, names)
    shipped = adapted  # what an executor sends to its workers, with the names given apart
    if spec is not adapted.input_spec:  # the caller's names, for methods taking features by name
        adapted = CountingModel(adapted, spec)
    bg = None if background is None else (
        pack_rows(slots, background, adapted.name) if slots else as_rows(background))
    drawn = None
    if choice is not None and choice.needs_background and bg is None:
        bg, drawn = default_background(rows, seed)
    choice_record = None if choice is None else choice.record(background is not None, drawn,
                                                              rows.shape[0])
    if explainer.needs_background and bg is None:
        raise InputError(f"explainer {method!r} needs a background; pass background=...")
    chosen = explainer.default_target if target is None else target
    if chosen == "predicted" and explainer.finds_predicted:
        targets = pending_predicted(rows.shape[0])  # the explainer's own forward picks them
    else:  # the model's outputs are needed only to find each row's predicted output
        outputs = adapted.predict(rows) if chosen == "predicted" else None
        targets = resolve_targets(chosen, adapted.output_names, rows.shape[0], outputs)
    extra: dict[str, Any] = {}
    if explainer.needs_labels:
        extra["y"] = _labels(method, y, rows.shape[0])
    started = time.perf_counter()
    shown: AbstractContextManager[None] = (
        Progress().task(method, rows.shape[0]) if progress else nullcontext())
    with shown:
        attribution = None if executor is None or not type(explainer).row_parallel else (
            executor.explain(method, explainer, shipped, rows, background=bg, targets=targets,
                             seed=seed, extra=extra,
                             input_spec=None if shipped is adapted else spec))
        if attribution is None:
            attribution = explainer.explain(
                adapted, rows, background=bg, targets=targets, rng=rng_for(seed), **extra
            )
    wall = time.perf_counter() - started
    problems = attribution_problems(attribution, rows.shape[0], rows.shape[1:], targets.n_slots)
    if problems:
        raise _refusal(host.explainers, method, type(explainer).explain, "an attribution",
                       problems)
    if targets.pending and (targets.indices < 0).any():
        raise RuntimeError(f"explainer {method!r} declares finds_predicted but left rows "
                           "without a chosen output")
    feature_names_, output_names, indices, inputs = _axes(
        attribution, tuple(names or default_feature_names(rows.shape[1:])), targets, rows)
    return Explanation(
        method=method,
        values=attribution.values,
        base_values=attribution.base_values,
        feature_names=feature_names_,
        output_names=output_names,
        target_indices=indices,
        inputs=inputs,
        params=explainer.params.model_dump(mode="json"),
        seed=seed,
        wall_time_s=wall,
        std_errors=attribution.std_errors,
        extras=attribution.extras,
        metadata={**attribution.metadata,
                  **({"inputs": [slot.to_dict() for slot in slots]} if slots else {}),
                  **({CHOICE_KEY: choice_record} if choice_record else {})},
        additive=type(explainer).additive,
        handoff=attribution.handoff,
        row_index=None if attribution.handoff.kind == "global" else (
            RowIndex.of(X) if row_index is None else RowIndex.given(row_index, rows.shape[0])),
    )


def _choose(method: str, model: Model, host: Host, params: dict[str, Any]) -> Choice | None:
    """The choice of ``method="auto"`` for ``model`` (``None`` for a named method)."""
    if method != AUTO:
        return None
    if params:
        raise InputError(f"method 'auto' takes no parameters ({', '.join(sorted(params))} "
                         "given): name the method to set its parameters")
    return choose_method(model, host)


def _labels(method: str, y: Any, n: int) -> np.ndarray:
    if y is None:
        raise InputError(f"explainer {method!r} needs the labels of the explained rows; pass "
                         "y=... (in a suite: set data.target)")
    labels = np.asarray(y)
    if labels.ndim == 0 or labels.shape[0] != n:
        raise InputError(f"explainer {method!r}: y has shape {labels.shape}, expected one "
                         f"label per explained row ({n})")
    return labels


def _axes(attribution: Any, names: tuple[str, ...], targets: TargetSelection,
          rows: np.ndarray) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray, np.ndarray]:
    """Feature names, output names, target indices and inputs of the explanation.

    A global explanation (``handoff.kind == "global"``: rows are repeats of one
    measurement over all of ``X``, such as permutation importance) has one row per repeat: its
    inputs are NaN (no row is a subject) and it may name its own axes with
    ``metadata["feature_names"]`` (e.g. layers) and ``metadata["output_names"]`` (e.g. a
    metric), whose slots then hold target index -1 (not a model output). A local explanation
    whose values are not over the input's features (layer units, tokens) names them with
    ``metadata["feature_names"]`` too.
    """
    meta = attribution.metadata
    names = tuple(meta.get("feature_names") or names)  # tokens, layer units, ...
    if attribution.handoff.kind != "global":
        return names, targets.names, targets.indices, rows
    values = np.asarray(attribution.values)
    n = values.shape[0]
    if meta.get("output_names"):
        outputs = tuple(meta["output_names"])
        indices = np.full((n, len(outputs)), -1, dtype=np.int64)
    else:
        outputs, indices = targets.names, np.repeat(targets.indices[:1], n, axis=0)
    return names, outputs, indices, np.full(values.shape[:-1], np.nan)


def _column_names(X: Any) -> tuple[str, ...] | None:
    columns = getattr(X, "columns", None)
    return None if columns is None else tuple(map(str, columns))


class CountingModel:
    """A model proxy that counts ``predict`` calls and rows (checks record their cost).

    ``input_spec`` replaces the model's own (see :func:`named_spec`); everything else is the
    wrapped model's, which ``_model`` holds.
    """

    def __init__(self, model: Model, input_spec: InputSpec | None = None) -> None:
        self._model = model
        self.input_spec = model.input_spec if input_spec is None else input_spec
        self.calls = 0
        self.rows = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The wrapped model's prediction, counted."""
        self.calls += 1
        self.rows += int(np.shape(X)[0])
        return self._model.predict(X)

    def randomizations(self) -> tuple[str, ...]:
        """The kinds the wrapped model can randomize (capability ``randomization``)."""
        return offered(self._model)

    def randomized(self, request: Randomization,
                   rng: np.random.Generator) -> tuple[RandomizedStage, ...]:
        """The wrapped model's randomized stages (their calls are not counted here)."""
        return randomize(self._model, request, rng)


def named_spec(model: Model, names: Sequence[str] | None) -> InputSpec:
    """``model``'s input spec, with ``names`` as its feature names if it has none of its own.

    A model fitted on a bare array knows no column names, while the suite's data or the
    caller's DataFrame does; explainers that take features by name (``pdp``, ``counterfactual``)
    read them from ``model.input_spec``. Names that do not fit the flat input are ignored.
    """
    spec = model.input_spec
    if spec.feature_names or not names or spec.feature_shape != (len(names),):
        return spec
    return dataclasses.replace(spec, feature_names=tuple(names))


NO_ROWS = "the explanation has no rows, so there is nothing to measure"
"""Why a check of an explanation without rows is NaN (which fails every gate)."""


@dataclass
class CheckRun:
    """A check made ready to measure one explanation (or, for a model check, the model): the
    instance with its context set, the model that counts its calls, and the data.
    :func:`check` runs it once; the conformance kit (:mod:`xaudit.testing`) runs it several
    times and inspects each raw outcome."""

    instance: Check
    model: CountingModel
    explanation: Explanation | None
    data: Dataset
    reference: Explanation | None = None

    def run(self, seed: int) -> tuple[CheckOutcome | None, float, bool]:
        """The outcome with the rng of ``seed``, its wall time, and whether the check tried to
        change the explanation or the reference.

        A model check (:class:`~xaudit.plugin.ModelCheck`) measures the model on the data. An
        explanation without rows is not measured: the value is NaN (failing every gate) with
        the reason in ``details["undefined"]``. Any other check is handed read-only copies
        (:func:`~xaudit.contracts.read_only`): a write in place ends the run (no outcome), a
        rebound field is seen in the copy's digest."""
        rng = rng_for(seed)
        started = time.perf_counter()
        if isinstance(self.instance, ModelCheck):
            outcome = self.instance.measure(self.model, self.data, rng)
            return outcome, time.perf_counter() - started, False
        if self.explanation is None:
            raise InputError(f"check {self.instance.name!r} measures an explanation: pass one")
        if not self.explanation.n_rows:
            return CheckOutcome(float("nan"), np.empty(0), {"undefined": NO_ROWS}), 0.0, False
        given = read_only(self.explanation)
        pairs = [(given, self.explanation)]
        context = self.instance.context
        if self.reference is not None and context is not None and context.reference is not None:
            pairs.append((context.reference, self.reference))
        digests = [explanation_digest(original) for _, original in pairs]
        started = time.perf_counter()
        try:
            outcome = self.instance.run(self.model, given, self.data, rng)
        except ValueError as exc:
            if "read-only" not in str(exc):
                raise
            return None, time.perf_counter() - started, True
        wall = time.perf_counter() - started
        after = [{explanation_digest(copy_), explanation_digest(original)}
                 for copy_, original in pairs]
        return outcome, wall, any(seen != {d} for seen, d in zip(after, digests, strict=True))


def prepare_check(name: str, model: object, explanation: Explanation | None, X: Any = None, *,
                  data: Dataset | None = None, host: Host | None = None,
                  reference: Explanation | None = None, background: Any = None,
                  baseline: Baseline | None = None,
                  documentation: DocumentationSpec | None = None,
                  executor: Executor | None = None,
                  **params: Any) -> CheckRun:
    """The check ``name`` with validated ``params``, negotiated with ``model`` and given its
    context (see :func:`check` for the arguments)."""
    host = host or default_host()
    adapted = pack_inputs(host.adapt(model))
    instance = host.check(name, params)
    host.negotiate_check(name, adapted, params)
    if explanation is None:
        if data is None:
            raise InputError(f"check {name!r}: pass an explanation to check, or, for a model "
                             "check, data=Dataset(...) with labels and a test split")
        dataset, names = data, data.feature_names
    else:
        rows = explanation.inputs if X is None else as_rows(X)
        if background is None:  # method "auto" drew the background from the explained rows
            background = recorded_background(explanation)
        dataset = data or Dataset.from_arrays(
            rows, feature_names=explanation.feature_names,
            background=None if background is None else as_rows(background))
        names = explanation.feature_names
    counter = CountingModel(adapted, named_spec(adapted, names))
    known = explanation is not None and explanation.method in host.explainers
    instance.context = CheckContext(
        reexplain=_reexplainer(host, explanation, dataset.background, counter, executor)
        if explanation is not None and known else None,
        reference=None if reference is None else read_only(reference),
        stochastic=explanation is not None and known
        and host.explainers.get(explanation.method).stochastic,
        baseline=baseline,
        documentation=documentation,
    )
    return CheckRun(instance, counter, explanation, dataset, reference)


def check(
    name: str,
    model: object,
    explanation: Explanation | None,
    X: Any = None,
    *,
    data: Dataset | None = None,
    gate: GateSpec | None = None,
    seed: int = 0,
    label: str | None = None,
    explainer_id: str = "",
    host: Host | None = None,
    reference: Explanation | None = None,
    background: Any = None,
    baseline: Baseline | None = None,
    documentation: DocumentationSpec | None = None,
    executor: Executor | None = None,
    **params: Any,
) -> CheckResult:
    """Run the check ``name`` on ``explanation`` of ``model``.

    ``X`` defaults to the explained rows; ``data`` (a :class:`Dataset`) gives background and
    labels when the check needs them (``background`` is a shortcut when ``data`` is not given).
    ``reference`` is a second explanation, for checks that compare two explainers
    (``agreement``); ``baseline`` the approved run's explanation, for drift checks
    (:class:`~xaudit.plugin.BaselineCheck`); ``documentation`` the suite's documentation block
    (decision rule, reason codes, segments), for policy and performance checks. Checks that
    re-explain perturbed inputs or a randomized model do it through
    ``instance.context.reexplain``: the explanation's method, params and seed, on this host.
    A model check (:class:`~xaudit.plugin.ModelCheck`, e.g. ``performance.r2``) takes
    ``explanation=None`` and ``data`` with labels and a test split. With a ``gate`` the result
    carries a pass/fail/warn verdict, otherwise ``not_gated``. An explanation without rows is
    not measured: its value is NaN (failing every gate) with the reason in
    ``details["undefined"]``. A check that raises propagates here; the runner records it. An
    outcome that breaks the contract (:func:`~xaudit.contracts.outcome_problems`), or a check
    that changed the explanation, raises :class:`~xaudit.errors.PluginError` naming the field.
    """
    host = host or default_host()
    prepared = prepare_check(name, model, explanation, X, data=data, host=host,
                             executor=executor,
                             reference=reference, background=background, baseline=baseline,
                             documentation=documentation, **params)
    outcome, wall, modified = prepared.run(seed)
    instance = prepared.instance
    if outcome is None or modified:
        raise _refusal(host.checks, name, type(instance).run, "an outcome", [MODIFIED])
    problems = outcome_problems(outcome, None if explanation is None else explanation.n_rows)
    if problems:
        raise _refusal(host.checks, name, type(instance).run, "an outcome", problems)
    direction: Direction = type(instance).direction
    status: Status = "not_gated"
    if gate is not None:
        direction = gate.direction or direction
        status = gate_status(outcome.value, gate.threshold, direction, gate.warn_threshold,
                             gate.severity)
    subject = explainer_id or ("" if explanation is None else explanation.method)
    return CheckResult(
        name=label or (f"{name}@{subject}" if subject else name),
        check=name,
        explainer=subject,
        direction=direction,
        status=status,
        value=float(outcome.value),
        threshold=None if gate is None else gate.threshold,
        warn_threshold=None if gate is None else gate.warn_threshold,
        values=outcome.values,
        details=outcome.details,
        params=instance.params.model_dump(mode="json"),
        seed=seed,
        model_calls=prepared.model.calls,
        wall_time_s=wall,
        handoff=outcome.handoff,
    )


MODIFIED = ("the check changed the explanation it measures (its arrays are read-only while it "
            "runs); work on a copy, e.g. np.abs(explanation.values) or values.copy()")


def _refusal(registry: Registry[Any], name: str, method: Callable[..., Any], what: str,
             problems: list[str]) -> PluginError:
    """The error refusing what a plugin returned, blaming it at its method's definition."""
    return registry.origin(name).error(
        f"returned {what} from {registry.kind} {name!r} that breaks the contract: "
        f"{'; '.join(problems)}", definition_site(method))


def _reexplainer(host: Host, explanation: Explanation, background: np.ndarray | None,
                 default_model: CountingModel, executor: Executor | None = None) -> Reexplain:
    """Re-run ``explanation``'s method and params on other rows or another model; a
    row-parallel method's rows go through ``executor`` when given (their model calls are then
    made by the executor and not counted in the check's ``model_calls``)."""

    def reexplain(X: np.ndarray, target_indices: np.ndarray, *, model: Model | None = None,
                  seed: int | None = None) -> np.ndarray:
        used = default_model if model is None else model
        explainer = host.explainer(explanation.method, explanation.params)
        host.negotiate(explanation.method, used)
        if explainer.needs_background and background is None:
            raise InputError(f"re-explaining with {explanation.method!r} needs a background; "
                             "pass background=... (or data=) to xaudit.check")
        indices = np.asarray(target_indices, dtype=np.int64)
        targets = TargetSelection(indices, explanation.output_names)
        chosen_seed = explanation.seed if seed is None else seed
        attribution = None if executor is None or not type(explainer).row_parallel else (
            executor.explain(explanation.method, explainer,
                             default_model._model if model is None else used, np.asarray(X),
                             background=background, targets=targets, seed=chosen_seed,
                             extra={}, input_spec=default_model.input_spec if model is None
                             else None, ship_once=model is None))
        if attribution is None:
            attribution = explainer.explain(used, np.asarray(X), background=background,
                                            targets=targets, rng=rng_for(chosen_seed))
        return np.asarray(attribution.values, dtype=np.float64)

    return reexplain


def gate_status(value: float, threshold: float, direction: Direction,
                warn_threshold: float | None = None, severity: str = "fail") -> Status:
    """``pass``, ``warn`` or ``fail`` for ``value`` against a gate (NaN always fails)."""

    def better(limit: float) -> bool:
        return value <= limit if direction == "lower" else value >= limit

    if np.isnan(value) or not better(threshold):
        return "warn" if severity == "warn" else "fail"
    if warn_threshold is not None and not better(warn_threshold):
        return "warn"
    return "pass"


def error_info(exc: BaseException) -> ErrorInfo:
    """An exception as stored in results.json; an exit (``sys.exit``) names the call."""
    message = f"sys.exit({exc.code!r}) was called" if isinstance(exc, SystemExit) else str(exc)
    return ErrorInfo(type(exc).__name__, message, "".join(traceback.format_exception(exc)))
