"""The second pass over a suite: what only the loaded plugins can tell.

:func:`validate_suite` reads a suite file and reports, at once, every problem of both passes:
the schema's (:mod:`xaudit.suite`) and this module's (unknown plugin names, plugin parameters
against each plugin's ``Params`` (method ``auto`` takes none), ``model.options`` against the
adapter's ``Options`` when the adapter is named or follows from the model file's suffix,
security switches set in ``options``, references between sections, a model check naming an
explainer or another check naming none, gates whose ``warn_threshold`` could never warn, data
and model files, report formats and template folders). A suite that fails the schema still gets
the plugin problems of its well-formed sections, so that fixing one round of problems does not
reveal another. Nothing here imports a model factory or reads a data file's contents.

:func:`documentation_problems` runs later, when the runner has loaded the data and the model
(before any explainer): it checks the names the ``documentation`` block refers to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .auto import AUTO
from .data import FILE_SUFFIXES, SKLEARN_DATASETS, source_extra
from .errors import Problem, SuiteError
from .extras import MODEL_FILE_EXTRAS, REPORT_EXTRAS, unavailable_reason
from .host import Host
from .plugin import AdapterOptions, Check, ModelCheck
from .suite import (
    CheckSpec,
    DataSpec,
    DocumentationSpec,
    ExecutionSpec,
    ExplainerSpec,
    GateSpec,
    ModelSpec,
    ReportSpec,
    Suite,
    parse_suite,
    read_suite,
    strict_validate,
)


def validate_suite(path: str | Path, host: Host, dependencies: bool = True) -> Suite:
    """The suite in the file ``path``, checked by the schema and against ``host``; raises
    :class:`SuiteError` listing the problems of both passes. ``dependencies`` as for
    :func:`check_against_host`."""
    data, source, base_dir, text = read_suite(path)
    try:
        suite = parse_suite(data, source, base_dir, text)
    except SuiteError as exc:
        if not isinstance(data, dict):
            raise
        more = _host_problems(_Parts.of_raw(data, base_dir), host, dependencies)
        raise SuiteError([*exc.problems, *more], source) from None
    check_against_host(suite, host, source, dependencies)
    return suite


@dataclass
class _Parts:
    """The sections of a suite that passed the schema: all of them when the suite is valid."""

    base_dir: Path
    model: ModelSpec | None = None
    data: DataSpec | None = None
    explainers: list[tuple[int, ExplainerSpec]] = field(default_factory=list)
    explainer_ids: list[str] | None = field(default_factory=list)
    """Every explainer id written, including those of explainers that failed the schema;
    ``None`` when the ``explainers`` section itself is unusable (references are not judged)."""
    checks: list[tuple[int, CheckSpec]] = field(default_factory=list)
    report: ReportSpec | None = None
    documentation: DocumentationSpec | None = None
    execution: ExecutionSpec | None = None

    @classmethod
    def of_suite(cls, suite: Suite) -> _Parts:
        return cls(suite.base_dir, suite.model, suite.data, list(enumerate(suite.explainers)),
                   [spec.id for spec in suite.explainers], list(enumerate(suite.checks)),
                   suite.report, suite.documentation, suite.execution)

    @classmethod
    def of_raw(cls, data: dict[str, Any], base_dir: Path) -> _Parts:
        parts = cls(base_dir, strict_validate(ModelSpec, data.get("model"))[0],
                    strict_validate(DataSpec, data.get("data"))[0],
                    report=strict_validate(ReportSpec, data.get("report", {}))[0],
                    documentation=strict_validate(DocumentationSpec,
                                                  data.get("documentation") or {})[0],
                    execution=strict_validate(ExecutionSpec, data.get("execution", {}))[0])
        entries = _list(data.get("explainers"))
        parts.explainer_ids = [] if entries else None
        for i, entry in enumerate(entries):
            spec = strict_validate(ExplainerSpec, entry)[0]
            if spec is not None:
                parts.explainers.append((i, spec))
            if parts.explainer_ids is not None and isinstance(entry, dict) and isinstance(
                    entry.get("id"), str):
                parts.explainer_ids.append(entry["id"])
        for j, entry in enumerate(_list(data.get("checks"))):
            check = strict_validate(CheckSpec, entry)[0]
            if check is not None:
                parts.checks.append((j, check))
        return parts


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def check_against_host(suite: Suite, host: Host, source: str = "suite",
                       dependencies: bool = True) -> None:
    """Second pass: plugin names, plugin and adapter params, references, gates and files;
    raises :class:`SuiteError` listing every problem.

    With ``dependencies`` the extras the data source, the model and the report formats need
    must be installed too (a pre-commit hook validating suites it does not run passes
    ``False``).
    """
    problems = _host_problems(_Parts.of_suite(suite), host, dependencies)
    if problems:
        raise SuiteError(problems, source)


def _host_problems(parts: _Parts, host: Host, dependencies: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    if parts.model is not None:
        problems += _model_problems(parts.model, parts.base_dir, host, dependencies)
    if parts.data is not None:
        problems += _data_problems(parts.data, parts.base_dir, dependencies)
    ids: dict[str, int] = {}
    for i, spec in parts.explainers:
        where = f"explainers[{i}]"
        if spec.id in ids:
            problems.append(Problem(f"{where}.id", f"duplicate id {spec.id!r} "
                                    f"(also explainers[{ids[spec.id]}])"))
        ids.setdefault(spec.id, i)
        if spec.method == AUTO:
            if spec.params:
                problems.append(Problem(f"{where}.params", "method 'auto' takes no parameters; "
                                        "name the method to set them"))
            continue
        if spec.method not in host.explainers:
            problems.append(_unknown(f"{where}.method", host, "explainers", spec.method))
            continue
        problems += _param_problems(host.explainers.get(spec.method).Params, spec.params,
                                    f"{where}.params")
    ids_written = parts.explainer_ids
    known = ", ".join(dict.fromkeys(ids_written or ())) or "none"
    keys: set[str] = set()
    for j, check in parts.checks:
        where = f"checks[{j}]"
        if check.key in keys:
            problems.append(Problem(f"{where}.id", f"duplicate check id {check.key!r}; give "
                                    "each of them its own id"))
        keys.add(check.key)
        for name, used in (("explainer", check.explainer), ("reference", check.reference)):
            if used is not None and ids_written is not None and used not in ids_written:
                problems.append(Problem(f"{where}.{name}", f"no explainer has id {used!r}; "
                                        f"ids are {known}"))
        if check.check not in host.checks:
            problems.append(_unknown(f"{where}.check", host, "checks", check.check))
            continue
        cls = host.checks.get(check.check)
        problems += _subject_problems(check, cls, known, where)
        problems += _param_problems(cls.Params, check.params, f"{where}.params")
        if check.gate is not None:
            problems += _gate_problems(check.gate, cls.direction, f"{where}.gate")
    if parts.report is not None:
        problems += _report_problems(parts.report, parts.base_dir, dependencies)
    if parts.execution is not None and parts.execution.engine == "dask" and dependencies:
        problems += _install_problems("execution.engine", "dask")
    decision = parts.documentation.decision if parts.documentation else None
    primary = decision.primary_explainer if decision else None
    if primary is not None and ids_written is not None and primary not in ids_written:
        problems.append(Problem("documentation.decision.primary_explainer", f"no explainer "
                                f"has id {primary!r}; ids are {known}"))
    return problems


def _subject_problems(check: CheckSpec, cls: type[Check], known: str,
                      where: str) -> list[Problem]:
    """A model check names no explainer; every other check names one."""
    model_check = issubclass(cls, ModelCheck)
    if model_check and check.explainer is not None:
        return [Problem(f"{where}.explainer", f"{check.check} measures the model on held-out "
                        "rows, not an explanation: remove 'explainer'")]
    if not model_check and check.explainer is None:
        return [Problem(f"{where}.explainer", f"{check.check} checks an explanation: name the "
                        f"explainer whose output it measures (ids are {known})")]
    return []


def _model_problems(spec: ModelSpec, base_dir: Path, host: Host,
                    dependencies: bool) -> list[Problem]:
    """The adapter's name, the model file, and ``options`` against the adapter's Options."""
    problems = []
    if spec.adapter != "auto" and spec.adapter not in host.adapters:
        problems.append(_unknown("model.adapter", host, "adapters", spec.adapter))
    if spec.path is not None and not (base_dir / spec.path).exists():
        problems.append(Problem("model.path", f"file {spec.path} does not exist"))
    switches = [key for key in spec.options if key in AdapterOptions.security_switches]
    problems += [Problem(f"model.options.{key}", f"{key!r} is a security switch and cannot be "
                         f"set in options; set model.{key} instead") for key in switches]
    adapter = None
    if spec.adapter in host.adapters:
        adapter = host.adapters.get(spec.adapter)
    elif spec.adapter == "auto" and spec.path is not None:
        ranked = sorted(host.adapters.items(), key=lambda item: -item[1].priority)
        adapter = next((cls for _, cls in ranked if cls.claims(base_dir / spec.path)), None)
    if adapter is not None:
        options = {k: v for k, v in spec.options.items() if k not in switches}
        problems += _param_problems(adapter.Options, options, "model.options")
    if spec.adapter in host.adapters and dependencies:
        problems += _install_problems("model.adapter", host.adapters.get(spec.adapter).extra)
    if spec.path is not None and dependencies:
        problems += _install_problems("model.path", MODEL_FILE_EXTRAS.get(Path(spec.path).suffix))
    return problems


def _data_problems(spec: DataSpec, base_dir: Path, dependencies: bool) -> list[Problem]:
    """A data file that does not exist or has a type no reader takes, and (with
    ``dependencies``) the extra that reading the source needs when it is not installed
    (in-memory data: none)."""
    source = spec.source
    if source is None:
        return []
    if source.startswith("sklearn:"):
        name = source.removeprefix("sklearn:")
        if name not in SKLEARN_DATASETS:
            return [Problem("data.source", f"unknown scikit-learn dataset {name!r}; shipped "
                            f"ones are {', '.join(SKLEARN_DATASETS)}")]
        return _install_problems("data.source", source_extra(source) if dependencies else None)
    if Path(source).suffix not in FILE_SUFFIXES:
        return [Problem("data.source", f"unsupported file type "
                        f"{Path(source).suffix or '(none)'}; use {', '.join(FILE_SUFFIXES)} "
                        "or sklearn:NAME")]
    if not (base_dir / source).is_file():
        return [Problem("data.source", f"file {source} does not exist")]
    return _install_problems("data.source", source_extra(source) if dependencies else None)


def _install_problems(path: str, extra: str | None) -> list[Problem]:
    """The optional install ``extra`` when it is missing here (``None``: the core does it)."""
    reason = unavailable_reason(extra)
    return [Problem(path, f"{reason}: pip install 'xaudit[{extra}]'")] if reason else []


def _gate_problems(gate: GateSpec, declared: str, path: str) -> list[Problem]:
    """A ``warn_threshold`` that could never warn: on the worse side of the threshold."""
    if gate.warn_threshold is None:
        return []
    lower = (gate.direction or declared) == "lower"
    if (gate.warn_threshold < gate.threshold) if lower else (gate.warn_threshold > gate.threshold):
        return []
    side, better = ("below", "lower") if lower else ("above", "higher")
    return [Problem(f"{path}.warn_threshold", f"{gate.warn_threshold:g} must be {side} the "
                    f"threshold {gate.threshold:g} when {better} values are better (a passing "
                    "value beyond warn_threshold warns); as written it never warns")]


def _report_problems(report: ReportSpec, base_dir: Path, dependencies: bool) -> list[Problem]:
    """Formats whose extras are missing (with ``dependencies``), an out-of-core bound without
    the ``dask`` extra (Zarr), and a template folder that does not exist."""
    problems = []
    for i, fmt in enumerate(report.formats):
        reason = unavailable_reason(REPORT_EXTRAS.get(fmt)) if dependencies else ""
        if reason:
            problems.append(Problem(f"report.formats[{i}]", f"{fmt!r} {reason}: pip install "
                                    f"'xaudit[{REPORT_EXTRAS[fmt]}]', or leave the format out"))
    reason = unavailable_reason("dask") if dependencies and report.out_of_core_mb else ""
    if reason:
        problems.append(Problem("report.out_of_core_mb", f"storing attributions out of core "
                                f"{reason}: pip install 'xaudit[dask]', or remove the bound"))
    folder = report.template_dir
    if folder is not None and not (base_dir / folder).is_dir():
        problems.append(Problem("report.template_dir", f"folder {folder} does not exist"))
    return problems


def _unknown(path: str, host: Host, registry_name: str, name: str) -> Problem:
    return Problem(path, str(getattr(host, registry_name).unknown(name)))


def _param_problems(schema: type[BaseModel], params: dict[str, Any], path: str) -> list[Problem]:
    return strict_validate(schema, params, path)[1]


def documentation_problems(doc: DocumentationSpec | None, features: Sequence[str],
                           outputs: Sequence[str]) -> list[Problem]:
    """Names in the ``documentation`` block that the data or the model do not have: the
    decision's output, reason-code, value-label and segment features (checked once data and model
    are loaded, before any work; a typo would otherwise print "Not applicable")."""
    if doc is None:
        return []
    problems = []
    known = set(features)
    decision = doc.decision
    if decision is not None and outputs:
        output = decision.output
        if isinstance(output, int) and not 0 <= output < len(outputs):
            problems.append(Problem("documentation.decision.output", f"output index {output} "
                                    f"is out of range: the model has {len(outputs)} output(s)"))
        elif isinstance(output, str) and output not in outputs:
            problems.append(Problem("documentation.decision.output", f"unknown output "
                                    f"{output!r}; the model's outputs are {_names(outputs)}"))
    for name in doc.reason_codes:
        if name not in known:
            problems.append(Problem(f"documentation.reason_codes.{name}", f"unknown feature "
                                    f"{name!r}; the data's features are {_names(features)}"))
    for name in doc.value_labels:
        if name not in known:
            problems.append(Problem(f"documentation.value_labels.{name}", f"unknown feature "
                                    f"{name!r}; the data's features are {_names(features)}"))
    for i, segment in enumerate(doc.segments):
        name = segment if isinstance(segment, str) else segment.feature
        if name not in known:
            where = f"documentation.segments[{i}]" + ("" if isinstance(segment, str) else
                                                      ".feature")
            problems.append(Problem(where, f"unknown feature {name!r}; the data's features "
                                    f"are {_names(features)}"))
    return problems


def _names(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(map(repr, names[:limit]))
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
