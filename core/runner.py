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
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .data import (
    Dataset,
    choose_rows,
    read_source,
    reshape_rows,
    select_features,
    split_rows,
)
from .engine import check, error_info, explain
from .errors import InputError, ModelLoadError, Problem, SuiteError, XauditError
from .explanation import Explanation
from .host import Host
from .model import Model, describe_model
from .multi_input import pack_inputs
from .output_folder import OutputFolder
from .probe import probe_model
from .provenance import environment, utc_now
from .references import import_reference
from .reports import write_outputs
from .reports.options import ReportOptions
from .results import AuditResult, CheckResult, ErrorInfo
from .safe_text import one_line
from .seeding import derive_seed, rng_for
from .suite import BackgroundSpec, DataSpec, ModelSpec, RowsSpec, Suite
from .suite_checks import check_against_host, documentation_problems
from .targets import resolve_targets

LOGGER = logging.getLogger("xaudit")


@dataclass
class Prepared:
    """A validated suite with its data and model loaded, ready to run."""

    dataset: Dataset
    model: Model
    timings: dict[str, float] = field(default_factory=dict)


class Runner:
    """Runs one suite on one host."""

    def __init__(self, suite: Suite, host: Host, quiet: bool = True) -> None:
        self.suite = suite
        self.host = host
        self.quiet = quiet

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
        for spec in self.suite.explainers:
            self.host.negotiate(spec.method, model)
            cls = self.host.explainers.get(spec.method)
            if cls.needs_background and dataset.background is None:
                raise InputError(f"explainers[{spec.id}]: {spec.method} needs a background")
            if cls.needs_labels and dataset.y is None:
                raise InputError(f"explainers[{spec.id}]: {spec.method} needs labels; name "
                                 "the label column in data.target")
        for check_spec in self.suite.checks:
            self.host.negotiate_check(check_spec.check, model, check_spec.params)
        return Prepared(dataset, model, {"load_data_s": loaded - started,
                                         "load_model_s": finished - loaded})

    def run(self, prepared: Prepared | None = None) -> AuditResult:
        """Run every explainer and check; failures are recorded, not raised."""
        started_at, clock = utc_now(), time.perf_counter()
        prepared = prepared or self.prepare()
        dataset, model = prepared.dataset, prepared.model
        suite = self.suite
        seeds: dict[str, Any] = {"suite": suite.seed, "explainers": {}, "checks": {}}
        timings: dict[str, Any] = {**prepared.timings, "explainers": {}, "checks": {}}
        explanations: dict[str, Explanation] = {}
        errors: dict[str, ErrorInfo] = {}
        for spec in self._progress(suite.explainers, "explainers"):
            seed = derive_seed(suite.seed, "explainers", spec.id)
            seeds["explainers"][spec.id] = seed
            try:
                explanations[spec.id] = explain(
                    model, dataset.X_explain, spec.method, background=dataset.background,
                    seed=seed, target=spec.target, feature_names=dataset.feature_names,
                    host=self.host,
                    y=None if dataset.y is None else dataset.y[dataset.explain_rows],
                    **spec.params,
                )
                timings["explainers"][spec.id] = explanations[spec.id].wall_time_s
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # an exit (sys.exit) too: a crash, never a silent end
                errors[spec.id] = error_info(exc)
                self._log(f"explainer {spec.id} ({spec.method}) crashed: {errors[spec.id]}")
        checks: list[CheckResult] = []
        for spec in self._progress(suite.checks, "checks"):
            seed = derive_seed(suite.seed, "checks", spec.key)
            seeds["checks"][spec.key] = seed
            checks.append(self._check(spec, model, dataset, explanations, errors, seed))
            timings["checks"][spec.key] = checks[-1].wall_time_s
        timings["total_s"] = time.perf_counter() - clock
        provenance = {
            **environment(self.host),
            "hashes": {"suite": suite.sha256, "model": model.fingerprint(),
                       "data": dataset.fingerprint},
            "seeds": seeds,
            "timings": timings,
            "started_at": started_at,
            "finished_at": utc_now(),
        }
        return AuditResult(
            suite_name=suite.name,
            suite=suite.model_dump(mode="json", by_alias=True),
            model=describe_model(model),
            data=dataset.describe(),
            explanations=explanations,
            explainer_errors=errors,
            checks=checks,
            provenance=provenance,
            suite_text=suite.text,
        )

    def _check(self, spec: Any, model: Model, dataset: Dataset,
               explanations: dict[str, Explanation], errors: dict[str, ErrorInfo],
               seed: int) -> CheckResult:
        cls = self.host.checks.get(spec.check)
        base = CheckResult(name=spec.key, check=spec.check, explainer=spec.explainer,
                           direction=cls.direction, status="error", seed=seed,
                           threshold=None if spec.gate is None else spec.gate.threshold)
        for used in (spec.explainer, spec.reference):
            if used is not None and used in errors:
                base.error = ErrorInfo("ExplainerFailed",
                                       f"explainer {used!r} crashed, so nothing to check", "")
                return base
        try:
            reference = None if spec.reference is None else explanations[spec.reference]
            return check(spec.check, model, explanations[spec.explainer], data=dataset,
                         gate=spec.gate, seed=seed, label=spec.key, explainer_id=spec.explainer,
                         host=self.host, reference=reference, **spec.params)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # an exit (sys.exit) too, as for explainers
            base.error = error_info(exc)
            return base

    def run_and_write(self, out_dir: Path) -> tuple[AuditResult, list[Path]]:
        """Run and write the results folder ``out_dir``; returns the result and the files.

        The folder is checked and locked before any work and replaced as a unit once every
        file is written (:class:`~xaudit.output_folder.OutputFolder`); a run that fails or is
        interrupted leaves it as it was.
        """
        with OutputFolder(out_dir) as folder:
            result = self.run()
            return result, self.write(result, folder)

    def write(self, result: AuditResult, out: Path | OutputFolder) -> list[Path]:
        """Write the suite's report formats (``results.json`` always) as the folder ``out``."""
        formats = list(dict.fromkeys(["json", *self.suite.report.formats]))
        options = None
        if {"html", "pdf"} & set(formats):
            options = ReportOptions.for_suite(result, self.suite)
        return write_outputs(result, out, formats, host=self.host, options=options)

    def _progress(self, items: list[Any], what: str) -> Any:
        # disable=None: tqdm shows bars on a terminal only, never in CI logs
        return tqdm(items, desc=what, disable=True if self.quiet or not items else None,
                    file=sys.stderr, leave=False)

    def _log(self, message: str) -> None:
        if not self.quiet:
            tqdm.write(one_line(message), file=sys.stderr)


def build_dataset(spec: DataSpec, seed: int, base_dir: Path) -> Dataset:
    """Read the data source and choose split, explained rows and background, all seeded.

    An ``n`` above the rows of its pool takes the whole pool: the sampling record says so
    (``n_used``, ``notes``) and a warning is logged on the ``xaudit`` logger."""
    with _field("data.source"):
        table = read_source(spec.source, base_dir, spec.target)
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
            LOGGER.warning("xaudit: warning: %s", note)
    return Dataset(
        X=table.X, y=table.y, feature_names=table.feature_names, source=spec.source,
        fingerprint=table.fingerprint, train_rows=train, test_rows=test,
        explain_rows=explain_rows, background=table.X[background_rows],
        categorical=tuple(spec.categorical), target_name=table.target_name,
        sampling=sampling,
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
    if spec.factory is not None:
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
