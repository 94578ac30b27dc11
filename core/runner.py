"""Runs a suite: load data and model, negotiate, explain, check, and assemble the result.

Everything that can make a suite invalid (schema, plugin params, references, data, model,
capability mismatches) is checked in :meth:`Runner.prepare`, before any explainer runs. After
that, an explainer or check that raises is recorded with its traceback and the rest still runs.
An exit (``sys.exit``, any ``BaseException`` but ``KeyboardInterrupt``) from user or plugin code
is an exception like any other: refused in preparation, recorded as a crash while running.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .auto import AUTO, choose_method
from .baseline import (
    ApprovedRun,
    absolute_gate,
    approved_for,
    baseline_of,
    mismatches,
    refusal,
    relative_gate_note,
    skip_reason,
    suite_mismatches,
)
from .cache import ExplanationCache, explanation_key
from .comparison import COMPARISON_FILE, compare, comparison_json
from .data import (
    Dataset,
    choose_rows,
    read_table,
    reshape_rows,
    select_features,
    split_rows,
)
from .engine import check, error_info, explain
from .errors import (
    InputError,
    ModelLoadError,
    OutputError,
    Problem,
    SuiteError,
    XauditError,
)
from .execution import open_executor
from .executor import Executor
from .explanation import Explanation
from .host import Host
from .model import Model, describe_model
from .multi_input import pack_inputs
from .output_folder import OutputFolder, same_folder
from .plugin import BaselineCheck
from .probe import probe_model
from .progress import Progress
from .provenance import environment, utc_now
from .references import import_reference
from .reports import WrittenOutputs, write_outputs
from .reports.options import ReportOptions
from .reports.reasons import reconcile
from .results import AuditResult, CheckResult, ErrorInfo
from .safe_text import one_line
from .seeding import derive_seed, rng_for
from .suite import (
    BackgroundSpec,
    DataSpec,
    ExecutionSpec,
    ExplainerSpec,
    ModelSpec,
    RowsSpec,
    Suite,
    in_memory,
)
from .suite_checks import check_against_host, documentation_problems
from .targets import resolve_targets

LOG = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A validated suite with its data and model loaded, ready to run."""

    dataset: Dataset
    model: Model
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Ledger:
    """What a run has produced so far: seeds, timings, explanations, crashes, cache records."""

    seeds: dict[str, Any]
    timings: dict[str, Any]
    explanations: dict[str, Explanation] = field(default_factory=dict)
    errors: dict[str, ErrorInfo] = field(default_factory=dict)
    cached: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Runs one suite on one host, compared with ``baseline`` (the approved run) when given,
    else with the suite's ``baseline:`` if it names one."""

    def __init__(self, suite: Suite, host: Host, quiet: bool = True,
                 baseline: ApprovedRun | None = None,
                 cache: ExplanationCache | None = None) -> None:
        self.suite = suite
        self.host = host
        self.quiet = quiet
        self.baseline = baseline
        self.cache = cache
        """Reuses explanations whose inputs are unchanged (:mod:`xaudit.cache`)."""

    def prepare(self) -> Prepared:
        """Validate and load everything; raises an :class:`XauditError` when invalid."""
        check_against_host(self.suite, self.host)
        started = time.perf_counter()
        dataset = build_dataset(self.suite.data, self.suite.seed, self.suite.base_dir)
        loaded = time.perf_counter()
        model = load_model(self.suite.model, dataset, self.suite.base_dir, self.host)
        with _field("model"), _refused("predict on the explained rows raised", InputError):
            probe_model(model, dataset.X_explain)
        finished = time.perf_counter()
        problems = documentation_problems(self.suite.documentation, dataset.feature_names,
                                          model.output_names)
        for i, spec in enumerate(self.suite.explainers):
            if spec.target is None or not model.output_names:
                continue  # an unbound callable learns its outputs on the first call
            try:
                resolve_targets(spec.target, model.output_names, 1,
                                np.zeros((1, len(model.output_names))))
            except InputError as exc:
                problems.append(Problem(f"explainers[{i}].target", str(exc)))
        if problems:
            raise SuiteError(problems)
        methods: dict[str, str] = {}
        for spec in self.suite.explainers:
            method = choose_method(model, self.host).method if spec.method == AUTO else (
                spec.method)
            methods[spec.id] = method
            self.host.negotiate(method, model)
            cls = self.host.explainers.get(method)
            if cls.needs_background and dataset.background is None:
                raise InputError(f"explainers[{spec.id}]: {spec.method} needs a background")
            if cls.needs_labels and dataset.y is None:
                raise InputError(f"explainers[{spec.id}]: {spec.method} needs labels; name "
                                 "the label column in data.target")
        for check_spec in self.suite.checks:
            self.host.negotiate_check(check_spec.check, model, check_spec.params)
        self._compare_with_baseline(dataset, model, methods)
        return Prepared(dataset, model, {"load_data_s": loaded - started,
                                         "load_model_s": finished - loaded})

    def _compare_with_baseline(self, dataset: Dataset, model: Model,
                               methods: dict[str, str]) -> None:
        """Load the baseline (if any) and refuse it, naming every difference, when this run
        cannot be compared with it; ``methods`` maps each explainer id to the method it runs
        (``auto`` resolved)."""
        self.baseline = self.baseline or approved_for(self.suite)
        if self.baseline is None:
            return
        approved = self.baseline
        problems = mismatches(approved.result, suite_name=self.suite.name,
                              feature_names=dataset.feature_names,
                              output_names=model.output_names,
                              feature_changes=approved.feature_changes)
        problems += suite_mismatches(approved, self.suite, methods, {
            spec.check: self.host.checks.get(spec.check) for spec in self.suite.checks})
        if problems:
            raise refusal(approved.path, problems)

    def run(self, prepared: Prepared | None = None) -> AuditResult:
        """Run every explainer and check; failures are recorded, not raised."""
        started_at, clock = utc_now(), time.perf_counter()
        prepared = prepared or self.prepare()
        dataset, model = prepared.dataset, prepared.model
        suite = self.suite
        ledger = _Ledger(seeds={"suite": suite.seed, "explainers": {}, "checks": {}},
                         timings={**prepared.timings, "explainers": {}, "checks": {}})
        seeds, timings, explanations = ledger.seeds, ledger.timings, ledger.explanations
        progress = None if self.quiet else Progress()
        n_rows = len(dataset.X_explain)
        checks: list[CheckResult] = []
        with open_executor(suite.execution, suite.report.out_of_core_mb) as executor:
            execution: dict[str, Any] = {**executor.describe(), "chunks": {}, "check_chunks": {}}
            for i, spec in enumerate(suite.explainers):
                self._run_explainer(i, spec, model, dataset, executor, progress, ledger)
                ran = executor.take_records()
                if ran:
                    execution["chunks"][spec.id] = [chunk.to_dict() for chunk in ran]
            for j, check_spec in enumerate(suite.checks):
                seed = derive_seed(suite.seed, "checks", check_spec.key)
                seeds["checks"][check_spec.key] = seed
                label = f"[check {j + 1}/{len(suite.checks)}] {check_spec.key} ({check_spec.check})"
                with _task(progress, label, n_rows):
                    checks.append(self._check(check_spec, model, dataset, explanations,
                                              ledger.errors, seed, executor))
                LOG.info("%s: %s", label, checks[-1].status)
                timings["checks"][check_spec.key] = checks[-1].wall_time_s
                ran = executor.take_records()
                if ran:
                    execution["check_chunks"][check_spec.key] = [c.to_dict() for c in ran]
        timings["total_s"] = time.perf_counter() - clock
        provenance = {
            **environment(self.host),
            "hashes": {"suite": suite.sha256, "model": model.fingerprint(),
                       "data": dataset.fingerprint},
            "seeds": seeds,
            "timings": timings,
            **({"cache": {"folder": str(self.cache.folder), "explainers": ledger.cached}}
               if self.cache is not None else {}),
            "started_at": started_at,
            "finished_at": utc_now(),
            **({"baseline": self.baseline.describe()} if self.baseline else {}),
            **({"execution": execution} if suite.execution != ExecutionSpec() else {}),
        }
        result = AuditResult(
            suite_name=suite.name,
            suite=suite.model_dump(mode="json", by_alias=True),
            model=describe_model(model),
            data=dataset.describe(),
            explanations=explanations,
            explainer_errors=ledger.errors,
            checks=checks,
            provenance=provenance,
            suite_text=suite.text,
            gate_policy=suite.gate_policy,
        )
        result.decisions = reconcile(result, suite.documentation).record()
        return result

    def _run_explainer(self, i: int, spec: ExplainerSpec, model: Model, dataset: Dataset,
                       executor: Executor, progress: Progress | None, ledger: _Ledger) -> None:
        """Explain with ``spec`` (the ``i``-th explainer) into ``ledger``: its explanation, or
        its crash recorded with the traceback."""
        seed = derive_seed(self.suite.seed, "explainers", spec.id)
        ledger.seeds["explainers"][spec.id] = seed
        label = f"[explainer {i + 1}/{len(self.suite.explainers)}] {spec.id} ({spec.method})"
        n_rows = len(dataset.X_explain)
        LOG.info("%s: explaining %d rows, seed %d", label, n_rows, seed)
        try:
            with _task(progress, label, n_rows):
                explanation, record = self._explain(spec, model, dataset, seed, executor)
            ledger.explanations[spec.id] = explanation
            ledger.timings["explainers"][spec.id] = (
                record["seconds"] if record and record["hit"] else explanation.wall_time_s)
            if record:
                ledger.cached[spec.id] = record
                LOG.info("%s: cache %s, key %s", label,
                         "hit" if record["hit"] else "miss", record["key"])
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # an exit (sys.exit) too: a crash, never a silent end
            ledger.errors[spec.id] = error_info(exc)
            LOG.warning("%s", one_line(f"explainer {spec.id} ({spec.method}) crashed: "
                                       f"{ledger.errors[spec.id]}"))

    def _explain(self, spec: ExplainerSpec, model: Model, dataset: Dataset, seed: int,
                 executor: Executor) -> tuple[Explanation, dict[str, Any] | None]:
        """One explainer's explanation, through the cache when there is one (then with the
        cache's provenance record)."""
        labels = None if dataset.y is None else dataset.y[dataset.explain_rows]
        rows = None if dataset.row_index is None else dataset.row_index.take(dataset.explain_rows)

        def compute() -> Explanation:
            return explain(model, dataset.X_explain, spec.method, background=dataset.background,
                           seed=seed, target=spec.target, feature_names=dataset.feature_names,
                           host=self.host, y=labels, row_index=rows, executor=executor,
                           **spec.params)

        if self.cache is None:
            return compute(), None
        # "auto" is keyed by the method it chooses for this model (its rule may change)
        method = choose_method(model, self.host).method if spec.method == AUTO else spec.method
        key = explanation_key(self.host, model, dataset.X_explain, dataset.background, labels,
                              dataset.feature_names, method, spec.params, spec.target, seed,
                              row_index=rows, requested=spec.method,
                              chunk_rows=executor.chunk_size)
        return self.cache.explain(key, compute)

    def _check(self, spec: Any, model: Model, dataset: Dataset,
               explanations: dict[str, Explanation], errors: dict[str, ErrorInfo],
               seed: int, executor: Executor) -> CheckResult:
        cls = self.host.checks.get(spec.check)
        base = CheckResult(name=spec.key, check=spec.check, explainer=spec.explainer or "",
                           direction=cls.direction, status="error", seed=seed,
                           threshold=None if spec.gate is None else spec.gate.threshold)
        skipped = skip_reason(spec, cls, self.baseline)
        if skipped is not None and issubclass(cls, BaselineCheck):  # nothing to compare with
            base.status, base.threshold, base.skipped = "not_gated", None, skipped
            return base
        for used in (spec.explainer, spec.reference):
            if used is not None and used in errors:
                base.error = ErrorInfo("ExplainerFailed",
                                       f"explainer {used!r} crashed, so nothing to check", "")
                return base
        try:
            reference = None if spec.reference is None else explanations[spec.reference]
            explanation = None if spec.explainer is None else explanations[spec.explainer]
            baseline = None
            if self.baseline is not None and spec.explainer is not None and issubclass(
                    cls, BaselineCheck):
                baseline = baseline_of(self.baseline, spec.explainer, dataset.fingerprint,
                                       dataset.explain_rows.tolist())
            gate = None if skipped else absolute_gate(spec.gate, self.baseline, spec.key)
            result = check(spec.check, model, explanation, data=dataset, gate=gate, seed=seed,
                           label=spec.key, explainer_id=spec.explainer or "", host=self.host,
                           reference=reference, baseline=baseline,
                           documentation=self.suite.documentation, executor=executor,
                           **spec.params)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # an exit (sys.exit) too, as for explainers
            base.error = error_info(exc)
            return base
        result.skipped = skipped  # a gate relative to a baseline this run does not have
        approved = None if self.baseline is None else self.baseline.value(spec.key)
        if spec.gate is not None and spec.gate.relative_to is not None and approved is not None:
            result.details["gate_relative_to_baseline"] = {
                "baseline_value": approved, "offset": spec.gate.threshold}
            result.handoff = replace(result.handoff, statements=(
                *result.handoff.statements, relative_gate_note(approved, spec.gate.threshold)))
        return result

    def run_and_write(self, out_dir: Path,
                      sign_key: Path | None = None) -> tuple[AuditResult, WrittenOutputs]:
        """Run and write the results folder ``out_dir``; returns the result and the files.

        The folder is checked and locked before any work and replaced as a unit once every
        file is written (:class:`~xaudit.output_folder.OutputFolder`); a run that fails or is
        interrupted leaves it as it was. The baseline's folder is refused: a run never
        replaces the approved run it is compared with. ``manifest.json`` is signed with
        ``sign_key`` when given (:mod:`xaudit.manifest`).
        """
        if self.baseline is not None and same_folder(out_dir, self.baseline.path):
            raise OutputError(f"the output folder {out_dir} is the baseline's; a run never "
                              "replaces the approved run it compares with: give another --out")
        with OutputFolder(out_dir) as folder:
            result = self.run()
            return result, self.write(result, folder, sign_key=sign_key)

    def write(self, result: AuditResult, out: Path | OutputFolder,
              sign_key: Path | None = None) -> WrittenOutputs:
        """Write the suite's report formats (``results.json`` always) as the folder ``out``,
        with ``comparison.json`` when the run has a baseline, and ``manifest.json`` last
        (signed with ``sign_key`` when given)."""
        if not isinstance(out, OutputFolder):
            with OutputFolder(out) as folder:
                return self.write(result, folder, sign_key=sign_key)
        formats = list(dict.fromkeys(["json", *self.suite.report.formats]))
        options = None
        if {"html", "pdf"} & set(formats):
            options = ReportOptions.for_suite(result, self.suite)
        compared = [] if self.baseline is None else [out.write(COMPARISON_FILE, comparison_json(
            compare(self.baseline.result, result, host=self.host,
                    feature_changes=self.baseline.feature_changes,
                    baseline_path=self.baseline.path, candidate_path=out.path)))]
        written = write_outputs(result, out, formats, host=self.host, options=options,
                                sign_key=sign_key)
        written += compared  # in place: the failed report sections stay with the files
        return written


def _task(progress: Progress | None, label: str, rows: int) -> AbstractContextManager[None]:
    """The progress task ``label`` (nothing when progress is off)."""
    return nullcontext() if progress is None else progress.task(label, rows)


def build_dataset(spec: DataSpec, seed: int, base_dir: Path) -> Dataset:
    """Read the data source and choose split, explained rows and background, all seeded.

    An ``n`` above the rows of its pool takes the whole pool: the sampling record says so
    (``n_used``, ``notes``) and a warning is logged on the ``xaudit`` logger."""
    with _field("data.source"):
        table = read_table(spec, base_dir)
    with _field("data.features"):
        table = select_features(table, spec.features)
    if spec.shape is not None:
        with _field("data.shape"):
            table = reshape_rows(table, spec.shape)
    unknown = [c for c in spec.categorical if c not in table.feature_names]
    if unknown:
        raise InputError(f"data.categorical: unknown feature(s) {', '.join(unknown)}")
    n = table.X.shape[0]
    train, test = split_rows(n, spec.split.test_size, rng_for(derive_seed(seed, "data", "split")))
    pools = {"train": train, "test": test, "all": np.arange(n)}
    with _field("data.explain.rows"):
        explain_rows = choose_rows(
            pools[spec.explain.pool], spec.explain.rows, spec.explain.n, spec.explain.method,
            rng_for(derive_seed(seed, "data", "explain")), f"rows from {spec.explain.pool}",
        )
    background_rows = choose_rows(
        pools[spec.background.pool], None, spec.background.n, spec.background.method,
        rng_for(derive_seed(seed, "data", "background")), "data.background",
    )
    sampling: dict[str, Any] = {
        "split": spec.split.model_dump(),
        "explain": spec.explain.model_dump(by_alias=True),
        "background": {**spec.background.model_dump(by_alias=True),
                       "rows": background_rows.tolist()},
    }
    drawn: list[tuple[str, RowsSpec | BackgroundSpec, np.ndarray]] = [
        ("background", spec.background, background_rows)]
    if spec.explain.rows is None:  # explicit rows are used as listed
        drawn.insert(0, ("explain", spec.explain, explain_rows))
    for name, rows_spec, chosen in drawn:
        if rows_spec.n is not None and chosen.size < rows_spec.n:
            note = (f"data.{name}.n is {rows_spec.n} but the {rows_spec.pool!r} pool has "
                    f"{chosen.size} rows; all {chosen.size} are used")
            sampling[name]["n_used"] = int(chosen.size)
            sampling.setdefault("notes", []).append(note)
            LOG.warning("%s", note)
    return Dataset(
        X=table.X, y=table.y, feature_names=table.feature_names,
        source=spec.source or str(in_memory(spec.X if spec.frame is None else spec.frame)),
        fingerprint=table.fingerprint, train_rows=train, test_rows=test,
        explain_rows=explain_rows, background=table.X[background_rows],
        categorical=tuple(spec.categorical), target_name=table.target_name,
        row_index=table.row_index, sampling=sampling,
    )


def load_model(spec: ModelSpec, dataset: Dataset, base_dir: Path, host: Host) -> Model:
    """Build or read the model the suite names and adapt it."""
    options: dict[str, Any] = {**spec.options, "trust": spec.trust}  # options cannot grant trust
    if dataset.categorical and "categories" not in options:
        options["categories"] = categories_of(dataset)
    if spec.task is not None:
        options["task"] = spec.task
    if spec.output_names is not None:
        options["output_names"] = spec.output_names
    adapter = None if spec.adapter == "auto" else spec.adapter
    obj: object
    if spec.obj is not None:
        obj = spec.obj
    elif spec.factory is not None:
        obj = _call_factory(spec.factory, dataset, base_dir)
    else:
        obj = base_dir / str(spec.path)
    with _refused("model: could not be adapted:", ModelLoadError):
        try:
            return pack_inputs(host.adapt(obj, adapter=adapter, **options))
        except (ModelLoadError, InputError) as exc:
            raise type(exc)(f"model: {exc}") from None


def categories_of(dataset: Dataset) -> dict[str, list[Any]]:
    """Each categorical feature's sorted distinct values over all rows (missing ones left out).

    Adapters that rebuild DataFrames give these columns a categorical dtype with exactly these
    categories, as ``DataFrame.astype("category")`` on the full table would.
    """
    found = {}
    for name in dataset.categorical:
        column = dataset.X[:, dataset.feature_names.index(name)]
        values = {v for v in column.tolist() if v == v and v is not None}  # v == v: not NaN
        try:
            found[name] = sorted(values)
        except TypeError:  # mixed types: group by type, then by text
            found[name] = sorted(values, key=lambda v: (type(v).__name__, str(v)))
    return found


@contextmanager
def _refused(what: str, error: type[XauditError]) -> Iterator[None]:
    """Raise ``error`` ("``what`` Type: message") when user code called in preparation raises
    or exits (``sys.exit``): the suite's inputs are unusable and nothing runs."""
    try:
        yield
    except (XauditError, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise error(f"{what} {error_info(exc)}") from exc


@contextmanager
def _field(path: str) -> Iterator[None]:
    """Prefix data errors with the suite field they come from."""
    try:
        yield
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _call_factory(reference: str, dataset: Dataset, base_dir: Path) -> object:
    with _refused(f"model.factory {reference!r} raised", ModelLoadError):
        factory = import_reference(reference, base_dir, "model.factory")
        takes_data = len(inspect.signature(factory).parameters) > 0
        return factory(dataset) if takes_data else factory()
