"""Two saved runs side by side: drift per shared explainer and the change of every gate.

:func:`compare` reads two :class:`~xaudit.results.AuditResult` (the approved run and a
candidate) and re-runs nothing: every registered drift check
(:class:`~xaudit.plugin.BaselineCheck`), with its default parameters, compares each explainer
both runs ran with the same method (with the parameters the candidate's suite gave it, else
its defaults), and every check gated in either run is listed with its value,
threshold and margin before and after, so a gate that passed by a wide margin and now passes
narrowly shows. ``xaudit diff BASE CANDIDATE`` prints it and writes ``comparison.json``;
``xaudit run --baseline DIR`` writes the same file beside the new results.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .baseline import mismatches, refusal, shared_rows
from .errors import XauditError
from .host import Host, validate_params
from .manifest import write_manifest
from .output_folder import OutputFolder
from .plugin import Baseline, BaselineCheck, Direction
from .results import AuditResult, CheckResult
from .safe_text import one_line

COMPARISON_FILE = "comparison.json"
NARROW = 0.5
"""A gate passing in both runs "narrowed" when its margin fell below this share of the
baseline's margin."""


@dataclass(frozen=True)
class GateChange:
    """One check gated in either run: value, threshold, verdict and margin before and after.

    The margin is how far the value is on the better side of the threshold (negative: failing).
    """

    name: str
    direction: Direction
    value_before: float | None
    value_after: float | None
    threshold_before: float | None
    threshold_after: float | None
    status_before: str | None
    status_after: str | None
    margin_before: float | None = field(init=False)
    margin_after: float | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "margin_before",
                           _margin(self.value_before, self.threshold_before, self.direction))
        object.__setattr__(self, "margin_after",
                           _margin(self.value_after, self.threshold_after, self.direction))

    @property
    def narrowed(self) -> bool:
        """Passing in both runs, with the margin now under :data:`NARROW` of the baseline's."""
        before, after = self.margin_before, self.margin_after
        return (before is not None and after is not None and before > 0 and after >= 0
                and after < NARROW * before)

    def statement(self) -> str | None:
        """The change in plain words, when it matters (now failing, or narrowly passing)."""
        before, after = self.margin_before, self.margin_after
        if before is not None and after is not None and before >= 0 > after:
            return (f"{self.name} passed in the approved run (margin {before:.3g}) and fails "
                    f"now (value {self.value_after:.4g}, threshold {self.threshold_after:g}).")
        if self.narrowed:
            return (f"{self.name} passed by {before:.3g} in the approved run and passes "
                    f"narrowly now, by {after:.3g}.")
        return None


def _margin(value: float | None, threshold: float | None, direction: Direction) -> float | None:
    if value is None or threshold is None or not math.isfinite(value):
        return None
    return threshold - value if direction == "lower" else value - threshold


@dataclass(frozen=True)
class DriftFinding:
    """One drift check's value on one explainer both runs share (or why it could not run)."""

    explainer: str
    method: str
    check: str
    direction: Direction
    value: float | None
    details: dict[str, Any]
    statements: tuple[str, ...]
    error: str | None = None


@dataclass
class Comparison:
    """The approved run and a candidate side by side (see the module docstring)."""

    baseline: dict[str, Any]
    candidate: dict[str, Any]
    same_data: bool
    features_added: list[str]
    features_missing: list[str]
    drift: list[DriftFinding]
    not_compared: dict[str, str]
    gates: list[GateChange]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``comparison.json``)."""
        return {
            "baseline": self.baseline, "candidate": self.candidate,
            "same_data": self.same_data, "features_added": self.features_added,
            "features_missing": self.features_missing,
            "drift": [asdict(f) for f in self.drift], "not_compared": self.not_compared,
            "gates": [{**asdict(g), "narrowed": g.narrowed, "statement": g.statement()}
                      for g in self.gates],
        }

    def lines(self) -> list[str]:
        """The comparison as text, for the terminal. Both runs are received data: every name,
        path, reason and statement is shown on one line with unsafe characters escaped
        (:func:`~xaudit.safe_text.one_line`)."""
        t = one_line
        out = [f"xaudit diff: {t(self.candidate['suite_name'])}",
               f"  baseline   {t(self.baseline['path'])}  model {_short(self.baseline)}",
               f"  candidate  {t(self.candidate['path'])}  model {_short(self.candidate)}",
               "  data: " + ("the same (drift compares the same explained rows)"
                             if self.same_data else "different (drift compares distributions)")]
        if self.features_added or self.features_missing:
            out.append(f"  features new: {t(', '.join(self.features_added)) or 'none'}; "
                       f"missing: {t(', '.join(self.features_missing)) or 'none'}")
        for key, reason in self.not_compared.items():
            out.append(f"  {t(key)}: not compared: {t(reason)}")
        for finding in self.drift:
            value = "error" if finding.value is None else f"{finding.value:.4g}"
            better = "lower" if finding.direction == "lower" else "higher"
            out.append(f"  {t(finding.check)}@{t(finding.explainer)}: {value} ({better} is "
                       "better)" + (f": {t(finding.error)}" if finding.error else ""))
            out += [f"      {t(s)}" for s in finding.statements]
        if self.gates:
            out.append("  gates: value (margin) in the approved run -> now")
        for gate in self.gates:
            out.append(f"  {t(gate.name)}: {_cell(gate.value_before, gate.margin_before)} -> "
                       f"{_cell(gate.value_after, gate.margin_after)}"
                       + ("  NARROWER" if gate.narrowed else ""))
            statement = gate.statement()
            if statement:
                out.append(f"      {t(statement)}")
        return out


def _short(identity: dict[str, Any]) -> str:
    return f"{one_line(str(identity.get('model_sha256') or '?')[:12])}, data " \
           f"{one_line(str(identity.get('data_sha256') or '?')[:12])}"


def _cell(value: float | None, margin: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" + ("" if margin is None else f" ({margin:+.3g})")


def identity(result: AuditResult, path: str | Path | None) -> dict[str, Any]:
    """What identifies a run in a comparison: folder, suite, model and data hashes, verdict."""
    return {"path": None if path is None else str(path), "suite_name": result.suite_name,
            "model_sha256": result.model.get("sha256"), "data_sha256": result.data.get("sha256"),
            "started_at": result.provenance.get("started_at"),
            "exit_code": int(result.exit_code())}


def compare(baseline: AuditResult, candidate: AuditResult, *, host: Host,
            feature_changes: bool = False, baseline_path: str | Path | None = None,
            candidate_path: str | Path | None = None) -> Comparison:
    """Compare ``candidate`` with the approved ``baseline`` (see the module docstring).

    Raises :class:`~xaudit.errors.InputError` naming every difference when the two cannot be
    compared (another suite, other features without ``feature_changes``, other outputs).
    """
    features = [str(f) for f in candidate.data.get("feature_names") or []]
    problems = mismatches(baseline, suite_name=candidate.suite_name, feature_names=features,
                          output_names=[str(o) for o in candidate.model.get("output_names")
                                        or []], feature_changes=feature_changes)
    if problems:
        raise refusal(Path(str(baseline_path or "(in memory)")), problems)
    before = [str(f) for f in baseline.data.get("feature_names") or []]
    drift, not_compared = _drift(baseline, candidate, host, feature_changes)
    return Comparison(
        baseline=identity(baseline, baseline_path), candidate=identity(candidate, candidate_path),
        same_data=baseline.data.get("sha256") == candidate.data.get("sha256"),
        features_added=[f for f in features if f not in before],
        features_missing=[f for f in before if f not in features],
        drift=drift, not_compared=not_compared, gates=_gates(baseline, candidate))


def _drift(baseline: AuditResult, candidate: AuditResult, host: Host,
           feature_changes: bool) -> tuple[list[DriftFinding], dict[str, str]]:
    checks = [cls for _, cls in host.checks.items() if issubclass(cls, BaselineCheck)]
    order = [str(spec.get("id")) for spec in candidate.suite.get("explainers", [])]
    keys = [k for k in dict.fromkeys(order + sorted(candidate.explanations))
            if k in candidate.explanations]
    rows = shared_rows(baseline.data, str(candidate.data.get("sha256")),
                       candidate.data.get("explain_rows") or [])
    findings: list[DriftFinding] = []
    not_compared: dict[str, str] = {}
    for key in keys:
        now, before = candidate.explanations[key], baseline.explanations.get(key)
        if before is None:
            not_compared[key] = "the baseline has no explanation by this id"
            continue
        if before.method != now.method:
            not_compared[key] = f"{before.method} in the baseline, {now.method} now"
            continue
        pair = Baseline(before, rows, feature_changes)
        for cls in checks:
            ran = next((c for c in candidate.checks if c.check == cls.name
                        and c.explainer == key), None)  # as the candidate's suite ran it
            try:
                params = validate_params(cls.Params, ran.params if ran else {},
                                         f"check {cls.name!r} params")
                outcome = cls(params).compare(now, pair)
            except XauditError as exc:
                findings.append(DriftFinding(key, now.method, cls.name, cls.direction, None,
                                             {}, (), str(exc)))
                continue
            findings.append(DriftFinding(key, now.method, cls.name, cls.direction,
                                         float(outcome.value), outcome.details,
                                         outcome.handoff.statements))
    return findings, not_compared


def _gates(baseline: AuditResult, candidate: AuditResult) -> list[GateChange]:
    before = {c.name: c for c in baseline.checks}
    after = {c.name: c for c in candidate.checks}
    changes = []
    for name in dict.fromkeys([*after, *before]):
        old, new = before.get(name), after.get(name)
        either = new or old
        if either is None or all(c is None or c.threshold is None for c in (old, new)):
            continue
        changes.append(GateChange(name, either.direction, _value(old), _value(new),
                                  _threshold(old), _threshold(new), _status(old), _status(new)))
    return changes


def _value(check: CheckResult | None) -> float | None:
    return None if check is None or check.value is None else float(check.value)


def _threshold(check: CheckResult | None) -> float | None:
    return None if check is None else check.threshold


def _status(check: CheckResult | None) -> str | None:
    return None if check is None else check.status


def comparison_json(comparison: Comparison) -> bytes:
    """The content of ``comparison.json``: strict JSON, keys sorted."""
    text = json.dumps(_finite(comparison.to_dict()), indent=2, sort_keys=True) + "\n"
    return text.encode("utf-8")


def write_comparison(comparison: Comparison, out_dir: str | Path) -> Path:
    """Add ``comparison.json`` to the results folder ``out_dir`` (created when missing), keeping
    the files it holds, and list it in the folder's ``manifest.json`` (the files kept stay
    listed with their recorded digests; :func:`~xaudit.manifest.write_manifest`); the folder is
    replaced as a unit (:class:`~xaudit.output_folder.OutputFolder`). Returns the file's path."""
    with OutputFolder(out_dir, keep=True) as folder:
        path = folder.write(COMPARISON_FILE, comparison_json(comparison))
        write_manifest(folder)
        folder.publish()
    return path


def _finite(obj: Any) -> Any:
    """``obj`` as strict JSON: numpy scalars and arrays as numbers and lists, NaN and
    infinities as ``null``."""
    if isinstance(obj, np.ndarray | np.generic):
        obj = obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
