"""``xaudit verify DIR``: is a results folder exactly what the run wrote?

Four layers, each naming the file it faults:

1. every file ``manifest.json`` lists is there with its recorded SHA-256; no file is missing
   and none was added (:mod:`xaudit.manifest`);
2. ``report.pdf`` carries, as its ``results.json`` attachment, the same bytes as the folder's
   ``results.json`` (a replaced or re-rendered PDF, or edited results, disagree);
3. ``results.json`` agrees with itself: its recorded verdict and exit code are the ones its
   checks' statuses give under its gate policy (:mod:`xaudit.verdict`), and no check's status
   contradicts its value and thresholds (a verdict edited from FAIL to PASS, with the manifest
   rewritten to match, still shows);
4. with a public key, ``manifest.sig`` is a valid Ed25519 signature of ``manifest.json`` by
   that key (:mod:`xaudit.signing`): only then is an edit that rewrote every digest caught.

An unsigned manifest detects accidents and careless edits; only a signature shows who wrote
the folder.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .manifest import SIGNATURE_FILE, UNLISTED, file_sha256, read_manifest
from .results import RESULTS_FILE
from .verdict import VERDICTS, GatePolicy, decide

PDF_FILE = "report.pdf"


@dataclass(frozen=True)
class Finding:
    """One problem: the file (relative to the folder) and what is wrong with it."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class Verification:
    """What :func:`verify_folder` found: problems, files checked, and the signature's state."""

    folder: Path
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    signature: str = "absent"
    """``valid``, ``invalid``, ``absent`` or ``not checked`` (signed, but no key was given)."""

    @property
    def ok(self) -> bool:
        """No finding."""
        return not self.findings


def verify_folder(folder: Path, public_key: Path | None = None) -> Verification:
    """Check ``folder`` against its manifest, its PDF attachment, itself and its signature.

    Raises :class:`~xaudit.errors.InputError` when the folder or its manifest cannot be read
    (or the key cannot be loaded); everything else is a :class:`Finding`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give a results folder xaudit wrote")
    manifest = read_manifest(folder)
    key = None
    if public_key is not None:
        from .signing import load_public_key

        key = load_public_key(public_key)
    report = Verification(folder)
    listed: dict[str, str] = manifest["files"]
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            report.findings.append(Finding(name, "missing (listed in manifest.json)"))
        elif file_sha256(path) != digest:
            report.findings.append(Finding(name, f"changed since it was written (SHA-256 "
                                                 f"{file_sha256(path)[:16]}..., manifest.json "
                                                 f"records {digest[:16]}...)"))
        else:
            report.checked.append(name)
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    for name in sorted(present - set(listed) - set(UNLISTED)):
        report.findings.append(Finding(name, "not listed in manifest.json (added after the run)"))
    results = folder / RESULTS_FILE
    if results.is_file():
        report.findings += _pdf_agrees(folder, results.read_bytes())
        report.findings += _consistent(results.read_bytes())
    _signature(folder, manifest, key, report)
    return report


def _pdf_agrees(folder: Path, results: bytes) -> list[Finding]:
    pdf = folder / PDF_FILE
    if not pdf.is_file():
        return []
    from .reports.embedding import attached

    try:
        embedded = attached(pdf, RESULTS_FILE)
    except ValueError as exc:
        return [Finding(PDF_FILE, str(exc))]
    if embedded is None:
        return [Finding(PDF_FILE, f"has no {RESULTS_FILE} attachment")]
    if embedded != results:
        return [Finding(PDF_FILE, f"its attached {RESULTS_FILE} differs from the folder's "
                                  f"{RESULTS_FILE} (one of them was replaced or edited)")]
    return []


def _consistent(data: bytes) -> list[Finding]:
    """``results.json``'s verdict and statuses against its own values and gate policy."""
    try:
        document = json.loads(data)
        checks: list[dict[str, Any]] = document["checks"]
        policy = GatePolicy.model_validate(document.get("gate_policy") or {})
        code = decide((c["status"] for c in checks), bool(document["explainer_errors"]),
                      policy)
    except (ValueError, KeyError, TypeError) as exc:
        return [Finding(RESULTS_FILE, f"cannot be read as xaudit results: {exc}")]
    findings = []
    if document.get("exit_code") != int(code) or document.get("verdict", VERDICTS[code]) != (
            VERDICTS[code]):
        findings.append(Finding(RESULTS_FILE, f"records verdict {document.get('verdict')!r} "
                                              f"(exit {document.get('exit_code')}), but its "
                                              f"checks give {VERDICTS[code]} (exit {int(code)})"))
    for check in checks:
        problem = _status_problem(check)
        if problem:
            findings.append(Finding(RESULTS_FILE, f"check {check.get('name')!r}: {problem}"))
    return findings


def _status_problem(check: dict[str, Any]) -> str:
    """What contradicts a check's recorded status, given its value and thresholds."""
    status, value, threshold = check.get("status"), check.get("value"), check.get("threshold")
    if status not in ("pass", "warn", "fail") or threshold is None:
        return ""
    lower = check.get("direction") == "lower"

    def within(limit: float) -> bool:
        number = math.nan if not isinstance(value, int | float) else float(value)
        return number <= limit if lower else number >= limit

    warn = check.get("warn_threshold")
    inside = within(threshold) and (warn is None or within(warn))
    if status == "pass" and not inside:
        return f"recorded PASS, but its value {value!r} is beyond its thresholds"
    if status == "warn" and inside:
        return f"recorded WARN, but its value {value!r} is within its thresholds"
    if status == "fail" and within(threshold):
        return f"recorded FAIL, but its value {value!r} is within its threshold {threshold!r}"
    return ""


def _signature(folder: Path, manifest: dict[str, Any], key: Any,
               report: Verification) -> None:
    path = folder / SIGNATURE_FILE
    if key is None:
        report.signature = "not checked" if path.is_file() else "absent"
        return
    from .signing import public_fingerprint, signature_valid

    if not path.is_file():
        report.signature = "absent"
        report.findings.append(Finding(SIGNATURE_FILE, "missing: the folder is not signed"))
        return
    expected = public_fingerprint(key)
    if manifest.get("signed_by") not in (None, expected):
        report.findings.append(Finding(SIGNATURE_FILE, f"manifest.json names signer "
                                                       f"{manifest.get('signed_by')}, the key "
                                                       f"given is {expected}"))
    data = (folder / "manifest.json").read_bytes()
    if signature_valid(key, data, path.read_text(errors="replace")):
        report.signature = "valid"
    else:
        report.signature = "invalid"
        report.findings.append(Finding(SIGNATURE_FILE, "does not verify: manifest.json was "
                                                       "edited or signed with another key"))
