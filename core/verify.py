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

Apart from these, it reads ``report.pdf``'s signature fields (one per sign-off role,
:mod:`xaudit.reports.signature_fields`): which are signed, by whom, and how many are still
empty. Signing a PDF appends an incremental update, so a signed ``report.pdf`` no longer has
the digest the run recorded; the finding then says whether the PDF as written is intact at
the start of the file (the signature's own validity is for a PDF reader to check).

An unsigned manifest detects accidents and careless edits; only a signature shows who wrote
the folder.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .extras import require_extra
from .manifest import MANIFEST_FILE, SIGNATURE_FILE, UNLISTED, read_manifest
from .output_folder import FolderReader
from .results import RESULTS_FILE
from .verdict import VERDICTS, GatePolicy, decide

if TYPE_CHECKING:
    from .reports.signature_fields import SignatureField

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
    pdf_signatures: list[SignatureField] | None = None
    """``report.pdf``'s signature fields, signed or not; ``None`` without a readable PDF."""

    @property
    def ok(self) -> bool:
        """No finding."""
        return not self.findings


def verify_folder(folder: Path, public_key: Path | None = None) -> Verification:
    """Check ``folder`` against its manifest, its PDF attachment, itself and its signature.

    The folder is read as inert data: through :class:`~xaudit.output_folder.FolderReader`, so
    no link inside it is followed (a link is a finding). Raises
    :class:`~xaudit.errors.InputError` when the folder or its manifest cannot be read (or the
    key cannot be loaded), and :class:`~xaudit.extras.MissingExtraError` before any work when
    the ``verify`` extra (pypdf, cryptography) is not installed; everything else is a
    :class:`Finding`.
    """
    require_extra("verify", "xaudit verify (checking a results folder)")
    folder = Path(folder)
    manifest = read_manifest(folder)
    key = None
    if public_key is not None:
        from .signing import load_public_key

        key = load_public_key(public_key)
    report = Verification(folder)
    listed: dict[str, str] = manifest["files"]
    with FolderReader(folder) as reader:
        contents = {name: _read(reader, name) for name in reader.entries()}
    for name, digest in listed.items():
        data = contents.get(name)
        if name not in contents:
            report.findings.append(Finding(name, "missing (listed in manifest.json)"))
        elif isinstance(data, Finding):
            report.findings.append(data)
        elif (actual := hashlib.sha256(data or b"").hexdigest()) != digest:
            report.findings.append(Finding(name, f"changed since it was written (SHA-256 "
                                                 f"{actual[:16]}..., manifest.json records "
                                                 f"{digest[:16]}...){_appended(data, digest)}"))
        else:
            report.checked.append(name)
    for name in sorted(set(contents) - set(listed) - set(UNLISTED)):
        report.findings.append(Finding(name, "not listed in manifest.json (added after the run)"))
    results = contents.get(RESULTS_FILE)
    if isinstance(results, bytes):
        pdf = contents.get(PDF_FILE)
        if pdf is not None and not isinstance(pdf, Finding):
            report.findings += _pdf_agrees(pdf, results)
        report.findings += _consistent(results)
    pdf = contents.get(PDF_FILE)
    if isinstance(pdf, bytes):
        from .reports.signature_fields import signature_fields

        try:
            report.pdf_signatures = signature_fields(pdf)
        except ValueError as exc:
            report.findings.append(Finding(PDF_FILE, str(exc)))
    _signature(contents, manifest, key, report)
    return report


def _appended(data: bytes | None, digest: str) -> str:
    """For a PDF extended by incremental updates (a signature adds one): that the file as
    written is intact at its start, and how many bytes were appended; else nothing."""
    data = data or b""
    end = data.find(b"%%EOF")
    while end >= 0:
        cut = end + 5
        cut += 2 if data[cut:cut + 2] == b"\r\n" else 1 if data[cut:cut + 1] in b"\r\n" else 0
        if cut < len(data) and hashlib.sha256(data[:cut]).hexdigest() == digest:
            return (f"; the file as written is intact and {len(data) - cut} bytes of "
                    "incremental update were appended (signing a PDF appends one)")
        end = data.find(b"%%EOF", end + 5)
    return ""


def _read(reader: FolderReader, name: str) -> bytes | Finding:
    """The bytes of the entry ``name``, or a finding when it is not a regular file."""
    try:
        with reader.open(name) as handle:
            return handle.read()
    except InputError as exc:
        return Finding(name, str(exc))


def _pdf_agrees(pdf: bytes, results: bytes) -> list[Finding]:
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


def _signature(contents: dict[str, bytes | Finding], manifest: dict[str, Any], key: Any,
               report: Verification) -> None:
    signature = contents.get(SIGNATURE_FILE)
    if key is None:
        report.signature = "not checked" if signature is not None else "absent"
        return
    from .signing import public_fingerprint, signature_valid

    if not isinstance(signature, bytes):
        report.signature = "absent"
        report.findings.append(signature or Finding(SIGNATURE_FILE,
                                                    "missing: the folder is not signed"))
        return
    expected = public_fingerprint(key)
    if manifest.get("signed_by") not in (None, expected):
        report.findings.append(Finding(SIGNATURE_FILE, f"manifest.json names signer "
                                                       f"{manifest.get('signed_by')}, the key "
                                                       f"given is {expected}"))
    data = contents.get(MANIFEST_FILE)
    if isinstance(data, bytes) and signature_valid(key, data,
                                                   signature.decode(errors="replace")):
        report.signature = "valid"
    else:
        report.signature = "invalid"
        report.findings.append(Finding(SIGNATURE_FILE, "does not verify: manifest.json was "
                                                       "edited or signed with another key"))
