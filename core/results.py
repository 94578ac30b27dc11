"""Check results, the audit result, and their saved form (``results.json`` + ``arrays.npz``,
and ``arrays.zarr.zip`` for attributions stored out of core: :mod:`xaudit.result_store`)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from .display import audit_html, check_html
from .errors import AttributionError, InputError
from .exitcodes import ExitCode
from .explanation import Explanation
from .handoff import CheckHandoff, from_record, to_record
from .npz import read_npz
from .output_folder import FolderReader, OutputFolder
from .result_store import (
    OUT_OF_CORE_NAMES,
    ZARR_FILE,
    StoredArray,
    ZarrSink,
    array_path,
    out_of_core,
    read_stored,
    write_out_of_core,
)
from .results_schema import check_document, read_json
from .verdict import VERDICTS, GatePolicy, decide

Status = Literal["pass", "fail", "warn", "error", "not_gated"]
RESULTS_FILE = "results.json"
ARRAYS_FILE = "arrays.npz"
SCHEMA_VERSION = 2
"""Version 2 stores the typed hand-offs (:mod:`xaudit.handoff`) of explanations and checks.
Version-1 folders are refused on load: their report data sat under string keys of ``extras``,
``metadata`` and ``details`` that cannot be mapped onto typed fields without guessing."""


@dataclass
class ErrorInfo:
    """An exception raised by an explainer or check, kept so the rest can still run."""

    type: str
    message: str
    traceback: str

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass
class CheckResult:
    """The measured value of one check and, when gated, its verdict."""

    name: str
    check: str
    explainer: str
    direction: Literal["lower", "higher"]
    status: Status
    value: float | None = None
    threshold: float | None = None
    warn_threshold: float | None = None
    values: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    model_calls: int = 0
    wall_time_s: float = 0.0
    error: ErrorInfo | None = None
    handoff: CheckHandoff = field(default_factory=CheckHandoff)
    """What the report draws for this check (curves) and its findings in plain words
    (statements); ``details`` are printed as they are."""
    skipped: str | None = None
    """Why the check (a drift check) or its gate (one relative to the baseline's value) was not
    evaluated, in a run without a baseline; its status is then ``not_gated``, and its value is
    ``None`` when the check itself did not run."""

    @property
    def passed(self) -> bool | None:
        """True/False for a gated check, ``None`` when not gated or crashed."""
        if self.status in ("pass", "warn"):
            return True
        return False if self.status == "fail" else None

    def verdict(self) -> str:
        """One line for logs and JUnit: the check, its value, threshold and verdict, then why it
        was skipped, or why its value is undefined (``details["undefined"]``) and its findings in
        plain words (the hand-off's statements)."""
        if self.error is not None:
            return f"{self.name}: error: {self.error}"
        value = "n/a" if self.value is None else f"{self.value:.6g}"
        if self.skipped is not None:
            measured = "SKIPPED" if self.value is None else f"NOT_GATED value {value}"
            return f"{self.name}: {measured}: {self.skipped}"
        relation = "<=" if self.direction == "lower" else ">="
        gate = ""
        if self.threshold is not None:
            gate = f" (gate: {relation} {self.threshold:g}{self._warning(relation)})"
        why = self.details.get("undefined")
        findings = ": " + " ".join(self.handoff.statements) if self.handoff.statements else ""
        return f"{self.name}: {self.status.upper()} value {value}{gate}" + (
            f"; {why}" if why else "") + findings

    def _repr_html_(self) -> str:
        """Jupyter's rich display: value, gate, verdict and what the check measures."""
        return check_html(self)

    def _warning(self, relation: str) -> str:
        """For a warned gate, the threshold the value crossed: the warning threshold, or the
        gate's own under ``severity: warn``."""
        if self.status != "warn" or self.threshold is None:
            return ""
        value = math.nan if self.value is None else self.value
        within = value <= self.threshold if self.direction == "lower" else value >= self.threshold
        if within and self.warn_threshold is not None:
            return f"; warning threshold {relation} {self.warn_threshold:g} crossed"
        return "; crossed, and severity: warn makes it a warning"


@dataclass
class AuditResult:
    """Everything one audit produced, with provenance, loadable back from disk."""

    suite_name: str
    suite: dict[str, Any]
    model: dict[str, Any]
    data: dict[str, Any]
    explanations: dict[str, Explanation] = field(default_factory=dict)
    explainer_errors: dict[str, ErrorInfo] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    suite_text: str = ""
    gate_policy: GatePolicy = field(default_factory=GatePolicy)
    """The verdict policy the run was decided under (suite ``gate_policy``, ``--fail-on-warn``);
    saved, so a re-rendered report states the same verdict."""
    decisions: dict[str, Any] = field(default_factory=dict)
    """The adverse-action reasons reconciled across explainers
    (:meth:`xaudit.reports.reasons.Reconciled.record`): issued, withheld with why, and where
    the corroborating explainers disagree. Written by the runner for readers of results.json;
    a report recomputes them from the explanations, so a received folder's copy is inert."""
    files: list[Path] = field(default_factory=list, compare=False)
    """The files :func:`xaudit.run_suite` and :func:`xaudit.render` wrote for this result in
    this session (not saved: a results folder is where they are)."""

    def _repr_html_(self) -> str:
        """Jupyter's rich display: verdict, counts, the checks and links to written files."""
        return audit_html(self, self.files)

    def exit_code(self) -> ExitCode:
        """Exit status under :attr:`gate_policy`: a crash (3) before a failed gate (1) before
        no gate evaluated (5); see :func:`xaudit.verdict.decide`."""
        return decide((c.status for c in self.checks), bool(self.explainer_errors),
                      self.gate_policy)

    def counts(self) -> dict[str, int]:
        """How many explainers and checks ran, failed, warned and crashed."""
        statuses = [c.status for c in self.checks]
        return {
            "explainers": len(self.explanations) + len(self.explainer_errors),
            "explainers_crashed": len(self.explainer_errors),
            "checks": len(self.checks),
            **{f"checks_{s}": statuses.count(s) for s in ("pass", "fail", "warn", "error")},
            "checks_not_gated": statuses.count("not_gated"),
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write ``results.json`` and ``arrays.npz`` (and ``arrays.zarr.zip`` for arrays over
        the suite's ``report.out_of_core_mb``) as the folder ``out_dir``; returns the JSON
        path. The folder is replaced as a unit (:class:`~xaudit.output_folder.OutputFolder`):
        afterwards it holds these files only."""
        with OutputFolder(out_dir) as folder:
            path = self.write_into(folder)[0]
            folder.publish()
        return path

    def write_into(self, folder: OutputFolder) -> list[Path]:
        """Write ``results.json``, ``arrays.npz`` and, when an explanation's attributions are
        over the bound, ``arrays.zarr.zip`` (:mod:`xaudit.result_store`) into an open output
        folder; returns the paths written, ``results.json`` first."""
        text, arrays, stored = self._saved_form()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        paths = [folder.write(RESULTS_FILE, text), folder.write(ARRAYS_FILE, buffer.getvalue())]
        if stored:
            with folder.stream(ZARR_FILE) as staged:
                write_out_of_core(ZarrSink(staged), stored)
            paths.append(folder.path / ZARR_FILE)
        return paths

    def results_json(self) -> bytes:
        """The bytes of ``results.json`` as :meth:`save` writes them (what a PDF embeds)."""
        return self._saved_form()[0]

    def out_of_core_mb(self) -> float | None:
        """The suite's ``report.out_of_core_mb``: attribution arrays over it are saved out of
        core (``None``: no bound)."""
        report = self.suite.get("report")
        bound = report.get("out_of_core_mb") if isinstance(report, dict) else None
        if bound is None:
            return None
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not bound > 0:
            raise InputError(f"report.out_of_core_mb: {bound!r} is not a positive number of "
                             "megabytes")
        return float(bound)

    def _saved_form(self) -> tuple[bytes, dict[str, np.ndarray],
                                   dict[tuple[str, str], np.ndarray]]:
        """``results.json``'s bytes, the arrays for ``arrays.npz``, and those stored out of
        core by (explainer id, name)."""
        arrays: dict[str, np.ndarray] = {}
        stored: dict[tuple[str, str], np.ndarray] = {}
        explanations = {}
        bound = self.out_of_core_mb()
        for key, explanation in self.explanations.items():
            record, named = explanation.to_record()
            if out_of_core(explanation.values.shape, bound):
                moved = {name: named.pop(name) for name in OUT_OF_CORE_NAMES if name in named}
                stored.update({(key, name): a for name, a in moved.items()})
                record["stored"] = {name: StoredArray(
                    store=ZARR_FILE, array=array_path(key, name), shape=list(a.shape),
                    dtype="float64").model_dump() for name, a in moved.items()}
            explanations[key] = record
            arrays.update({f"explanations/{key}/{name}": a for name, a in named.items()})
        checks = []
        for check in self.checks:
            record = asdict(dataclasses.replace(check, values=None, handoff=CheckHandoff()))
            record.pop("values")
            record["passed"] = check.passed
            if check.values is not None:
                arrays[f"checks/{check.name}/values"] = check.values
            record["handoff"], named = to_record(check.handoff)
            arrays.update({f"checks/{check.name}/{name}": a for name, a in named.items()})
            checks.append(record)
        document = {
            "schema_version": SCHEMA_VERSION,
            "suite_name": self.suite_name,
            "exit_code": int(self.exit_code()),
            "verdict": VERDICTS[self.exit_code()],
            "gate_policy": self.gate_policy.model_dump(mode="json"),
            "counts": self.counts(),
            "suite": self.suite,
            "suite_text": self.suite_text,
            "model": self.model,
            "data": self.data,
            "explanations": explanations,
            "explainer_errors": {k: asdict(v) for k, v in self.explainer_errors.items()},
            "checks": checks,
            "provenance": self.provenance,
            "decisions": self.decisions,
        }
        return to_json(document).encode("utf-8"), arrays, stored

    @classmethod
    def load(cls, out_dir: str | Path) -> AuditResult:
        """Read back what :meth:`save` wrote (schema version :data:`SCHEMA_VERSION` only).

        Raises :class:`~xaudit.errors.InputError` for a missing file, a symbolic link in the
        folder (:class:`~xaudit.output_folder.FolderReader`: no link inside is followed), a file
        that is not what ``save`` writes (:mod:`xaudit.results_schema`, :mod:`xaudit.npz`),
        another schema version (naming both), and a malformed hand-off (naming the field).
        """
        out = Path(out_dir)
        with FolderReader(out) as folder:
            with folder.open(RESULTS_FILE) as handle:
                document = _decode(read_json(handle.read(), out / RESULTS_FILE))
            version = document.get("schema_version")
            if version != SCHEMA_VERSION:
                raise InputError(
                    f"{out / RESULTS_FILE} has results schema version {version}; this xaudit "
                    f"reads version {SCHEMA_VERSION} only (version 2 stores the typed report "
                    "hand-offs that version 1 left under string keys). Run the suite again to "
                    "write it in version 2, or render it with the xaudit release that wrote it")
            check_document(document, out / RESULTS_FILE)
            with folder.open(ARRAYS_FILE) as handle:
                arrays = read_npz(out / ARRAYS_FILE, handle)
            stored = _read_out_of_core(folder, out, document["explanations"])
        explanations = {}
        for key, record in document["explanations"].items():
            prefix = f"explanations/{key}/"
            named = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
            for name in [name for owner, name in stored if owner == key]:
                if name in named:
                    raise InputError(f"{out}: explanation {key!r} has {name} both in "
                                     f"{ARRAYS_FILE} and in {ZARR_FILE}; a run writes one")
                named[name] = stored[key, name]
            try:
                explanations[key] = Explanation.from_record(record, named)
            except (KeyError, IndexError, TypeError, ValueError,
                    AttributionError) as exc:  # arrays missing, bad, or not finite
                raise InputError(f"{out}: explanation {key!r} cannot be rebuilt from "
                                 f"{ARRAYS_FILE}: {type(exc).__name__}: {exc}") from None
        checks = []
        for record in document["checks"]:
            error = record.pop("error", None)
            record.pop("passed", None)
            record.pop("values", None)  # the values are in arrays.npz
            prefix = f"checks/{record['name']}/"
            named = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
            handoff = from_record(CheckHandoff, record.pop("handoff", {}), named,
                                  f"{record['name']}: handoff")
            checks.append(CheckResult(
                **_known(CheckResult, record),
                values=named.get("values"),
                error=None if error is None else _error(error),
                handoff=handoff,
            ))
        return cls(
            suite_name=document["suite_name"],
            suite=document["suite"],
            model=document["model"],
            data=document["data"],
            explanations=explanations,
            explainer_errors={k: _error(v) for k, v in document["explainer_errors"].items()},
            checks=checks,
            provenance=document["provenance"],
            suite_text=document.get("suite_text", ""),
            gate_policy=_policy(document.get("gate_policy") or {}, out),
            decisions=document.get("decisions") or {},
        )


def _read_out_of_core(folder: FolderReader, out: Path,
                      records: dict[str, Any]) -> dict[tuple[str, str], np.ndarray]:
    """The explanations' arrays ``results.json`` points to in ``arrays.zarr.zip`` (none when
    no record has a ``stored`` pointer, and then zarr is not imported)."""
    pointers = {(key, name): StoredArray.model_validate(pointer)
                for key, record in records.items()
                for name, pointer in (record.get("stored") or {}).items()}
    if not pointers:
        return {}
    with folder.open(ZARR_FILE) as handle:
        return read_stored(handle, out / ZARR_FILE, pointers)


def _policy(record: dict[str, Any], out: Path) -> GatePolicy:
    try:
        return GatePolicy.model_validate(record)
    except ValidationError as exc:
        raise InputError(f"{out / RESULTS_FILE}: invalid gate_policy: {exc}") from None


def to_json(document: Any) -> str:
    """``document`` as ``results.json`` stores it: indented, sorted keys, NaN and infinities
    as ``{"$float": ...}`` (:data:`NONFINITE_KEY`), numpy scalars and arrays as lists."""
    return json.dumps(_encode(document), indent=2, sort_keys=True, default=_json_default,
                      allow_nan=False) + "\n"


def from_json(text: str) -> Any:
    """Inverse of :func:`to_json`."""
    return _decode(json.loads(text))


def _known(cls: type, record: dict[str, Any]) -> dict[str, Any]:
    """The entries of a saved record that are fields of the dataclass ``cls`` (a record written
    by a later release may hold more)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in record.items() if k in names}


def _error(record: dict[str, Any]) -> ErrorInfo:
    """An error record read back."""
    return ErrorInfo(**_known(ErrorInfo, record))


NONFINITE_KEY = "$float"
"""results.json stores NaN and infinities as ``{"$float": "nan" | "inf" | "-inf"}``."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return {NONFINITE_KEY: repr(obj)}
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v) for v in obj]
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {NONFINITE_KEY} and obj[NONFINITE_KEY] in ("nan", "inf", "-inf"):
            return float(obj[NONFINITE_KEY])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def _json_default(obj: object) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in results.json")
