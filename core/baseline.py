"""The approved run a governance run compares with: loading it, refusing a mismatch, pairing.

A baseline is a results folder that ``xaudit run`` wrote for the approved model (read back with
:meth:`~xaudit.results.AuditResult.load`, never re-run). Before any work, a run with a baseline
is refused (exit 4) when the two cannot be compared, with every difference named: another
suite (its ``name``), another feature set (features added or missing, unless the suite says
``baseline.feature_changes: compare``), other model outputs, another results schema, a drift
check on an explainer the baseline lacks or ran with another method, a gate relative to a
baseline value the baseline does not have. Features in another order are matched by name.

Drift checks (:class:`~xaudit.plugin.BaselineCheck`) and gates ``relative_to: baseline`` are
evaluated only when the run has a baseline; without one they are reported as skipped, with the
reason (:func:`skip_reason`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .feature_shares import BASELINE_SHARES, baseline_shares
from .plugin import Baseline, BaselineCheck, Check
from .results import RESULTS_FILE, AuditResult
from .safe_text import one_line
from .suite import CheckSpec, GateSpec, Suite

NO_BASELINE = "this run has none (pass --baseline DIR or set baseline: in the suite)"


@dataclass(frozen=True)
class ApprovedRun:
    """A saved run loaded as a baseline: where it is, what it holds, how to compare with it."""

    path: Path
    result: AuditResult
    sha256: str
    """SHA-256 of its ``results.json``, recorded in the new run's provenance."""
    feature_changes: bool = False
    """Compare features present in one run only (as contributing nothing in the other)."""

    def describe(self) -> dict[str, Any]:
        """What identifies the baseline, for the new run's provenance."""
        return {
            "path": str(self.path),
            "results_sha256": self.sha256,
            "suite_name": self.result.suite_name,
            "model_sha256": self.result.model.get("sha256"),
            "data_sha256": self.result.data.get("sha256"),
            "started_at": self.result.provenance.get("started_at"),
            "feature_changes": "compare" if self.feature_changes else "refuse",
            BASELINE_SHARES: baseline_shares(self.result),
        }

    def value(self, key: str) -> float | None:
        """The approved run's finite value of the check ``key``, if it has one."""
        found = next((c for c in self.result.checks if c.name == key), None)
        if found is None or found.value is None or not math.isfinite(found.value):
            return None
        return float(found.value)


def load_results(path: str | Path, role: str) -> tuple[AuditResult, str]:
    """The saved run in ``path`` and the SHA-256 of its results.json; ``role`` ("baseline",
    "candidate") names the folder in errors."""
    folder = Path(path)
    file = folder / RESULTS_FILE
    if not file.is_file():
        raise InputError(f"{role} {folder} holds no {RESULTS_FILE}; give a folder that "
                         "`xaudit run` wrote")
    try:
        result = AuditResult.load(folder)
    except InputError as exc:
        raise InputError(f"{role} {folder}: {exc}") from None
    return result, hashlib.sha256(file.read_bytes()).hexdigest()


def load_approved(path: str | Path, feature_changes: bool = False) -> ApprovedRun:
    """Read the approved run in ``path``; raises :class:`~xaudit.errors.InputError` (exit 4)
    when it is not a results folder or has another results schema."""
    result, digest = load_results(path, "baseline")
    return ApprovedRun(Path(path), result, digest, feature_changes)


def approved_for(suite: Suite, override: str | Path | None = None,
                 allow_feature_changes: bool = False) -> ApprovedRun | None:
    """The baseline of a run of ``suite``: ``override`` (``--baseline DIR``, relative to the
    working folder) or the suite's ``baseline.path`` (relative to the suite file); ``None``
    when neither is given. Feature changes are compared when the suite or the caller allows
    them."""
    spec = suite.baseline
    if override is not None:
        path = Path(override)
    elif spec is not None:
        path = suite.base_dir / spec.path
    else:
        return None
    allowed = allow_feature_changes or (spec is not None and spec.feature_changes == "compare")
    return load_approved(path, allowed)


def mismatches(approved: AuditResult, *, suite_name: str, feature_names: Sequence[str],
               output_names: Sequence[str], feature_changes: bool) -> list[str]:
    """Why a run of ``suite_name`` on these features and outputs cannot be compared with
    ``approved`` (empty when it can)."""
    problems = []
    if approved.suite_name != suite_name:
        problems.append(f"the baseline is a run of suite {approved.suite_name!r}, this is "
                        f"{suite_name!r}: compare runs of the same suite (its name)")
    before = [str(f) for f in approved.data.get("feature_names") or []]
    added = [f for f in feature_names if f not in before]
    missing = [f for f in before if f not in feature_names]
    if (added or missing) and not feature_changes:
        parts = ([f"new: {', '.join(added)}"] if added else []) + (
            [f"missing: {', '.join(missing)}"] if missing else [])
        problems.append(f"the features differ from the baseline's ({'; '.join(parts)}); set "
                        "baseline.feature_changes: compare in the suite (or pass "
                        "--allow-feature-changes) to compare them as contributing nothing "
                        "where they are absent")
    approved_outputs = [str(o) for o in approved.model.get("output_names") or []]
    if approved_outputs != list(output_names):
        problems.append(f"the model outputs differ: {', '.join(approved_outputs) or 'none'} in "
                        f"the baseline, {', '.join(output_names) or 'none'} now")
    return problems


def suite_mismatches(approved: ApprovedRun, suite: Suite, methods: Mapping[str, str],
                     checks: Mapping[str, type[Check]]) -> list[str]:
    """What the suite's drift checks and relative gates need that ``approved`` lacks.

    ``methods`` maps each explainer id of the suite to the method it runs (``auto``
    resolved for this model); ``checks`` each check name of the suite to its registered class.
    """
    problems = []
    for i, spec in enumerate(suite.checks):
        where = f"checks[{i}] ({spec.key})"
        if issubclass(checks[spec.check], BaselineCheck) and spec.explainer is not None:
            found = approved.result.explanations.get(spec.explainer)
            if found is None:
                problems.append(f"{where} compares explainer {spec.explainer!r} with the "
                                "baseline, which has no explanation by that id (it has "
                                f"{', '.join(approved.result.explanations) or 'none'})")
            elif found.method != methods.get(spec.explainer):
                problems.append(f"{where}: explainer {spec.explainer!r} is "
                                f"{methods.get(spec.explainer)} now and {found.method} in the "
                                "baseline; compare explanations of the same method")
        if spec.gate is not None and spec.gate.relative_to == "baseline" and (
                approved.value(spec.key) is None):
            problems.append(f"{where} gates relative to the baseline's value of {spec.key!r}, "
                            "which the baseline does not have (it did not run that check, or "
                            "it was skipped or crashed)")
    return problems


def refusal(path: Path, problems: Sequence[str]) -> InputError:
    """The error that refuses a comparison with the baseline in ``path``, naming each problem."""
    lines = "\n".join(f"  - {one_line(p)}" for p in problems)  # names from a received folder
    return InputError(f"baseline {path} cannot be compared with this run:\n{lines}")


def skip_reason(spec: CheckSpec, cls: type[Check], approved: ApprovedRun | None) -> str | None:
    """Why the check ``spec`` (a drift check), or its gate (relative to the baseline's value),
    cannot be evaluated in a run without a baseline; ``None`` when it can."""
    if approved is not None:
        return None
    if issubclass(cls, BaselineCheck):
        return f"compares with the approved run, and {NO_BASELINE}"
    if spec.gate is not None and spec.gate.relative_to == "baseline":
        return f"its gate is relative to the approved run's value, and {NO_BASELINE}"
    return None


def absolute_gate(gate: GateSpec | None, approved: ApprovedRun | None,
                  key: str) -> GateSpec | None:
    """``gate`` with a threshold relative to the baseline turned into an absolute one (the
    baseline's value of ``key`` plus the offsets); other gates unchanged."""
    if gate is None or gate.relative_to is None:
        return gate
    value = None if approved is None else approved.value(key)
    if value is None:
        raise InputError(f"{key}: the gate is relative to a baseline value that is missing")
    warn = gate.warn_threshold
    return gate.model_copy(update={"threshold": value + gate.threshold, "relative_to": None,
                                   "warn_threshold": None if warn is None else value + warn})


def relative_gate_note(approved_value: float, offset: float) -> str:
    """The sentence a check gated relative to the baseline adds to its findings: where its
    threshold came from (the approved run's value and the suite's offset)."""
    change = f"{'minus' if offset < 0 else 'plus'} {abs(offset):g}" if offset else "itself"
    return f"The gate is the approved run's value, {approved_value:.4g}, {change}."


def shared_rows(approved_data: Mapping[str, Any], data_sha256: str,
                explain_rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions, in the approved and in the new explanation, of the data rows both explained;
    ``None`` when the data differ (another SHA-256) or no row was explained by both."""
    if approved_data.get("sha256") != data_sha256:
        return None
    before = {int(r): i for i, r in enumerate(approved_data.get("explain_rows") or [])}
    pairs = [(before[int(r)], j) for j, r in enumerate(explain_rows) if int(r) in before]
    if not pairs:
        return None
    positions = np.asarray(pairs, dtype=np.int64)
    return positions[:, 0], positions[:, 1]


def baseline_of(approved: ApprovedRun, explainer_id: str, data_sha256: str,
                explain_rows: Sequence[int]) -> Baseline:
    """The :class:`~xaudit.plugin.Baseline` a drift check on ``explainer_id`` compares with."""
    return Baseline(approved.result.explanations[explainer_id],
                    shared_rows(approved.result.data, data_sha256, explain_rows),
                    approved.feature_changes)
