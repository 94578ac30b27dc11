"""The files a report embeds and hashes: ``results.json`` and the suite file, as bytes."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from ..extras import require_extra
from ..results import RESULTS_FILE, AuditResult


@dataclass(frozen=True)
class Embedded:
    """One file to attach: its name, bytes, MIME type and description."""

    name: str
    data: bytes
    mime: str
    description: str

    @property
    def sha256(self) -> str:
        """SHA-256 hex digest of the bytes."""
        return hashlib.sha256(self.data).hexdigest()


def results_file(result: AuditResult) -> Embedded:
    """``results.json``, byte for byte as :meth:`AuditResult.save` writes it."""
    return Embedded(RESULTS_FILE, result.results_json(), "application/json",
                    "xaudit results of this audit (AuditResult.load reads it with arrays.npz)")


def suite_file(result: AuditResult) -> Embedded:
    """The suite as written (YAML), or its canonical JSON when it was built in Python."""
    if result.suite_text:
        return Embedded("suite.yaml", result.suite_text.encode("utf-8"), "application/yaml",
                        "the audit suite as run")
    text = json.dumps(result.suite, indent=2, sort_keys=True) + "\n"
    return Embedded("suite.json", text.encode("utf-8"), "application/json",
                    "the audit suite as run (canonical JSON)")


def run_time(result: AuditResult) -> datetime:
    """When the run finished (UTC), the one date every output carries; the epoch if unknown."""
    stamp = result.provenance.get("finished_at") or result.provenance.get("started_at")
    if not stamp:
        return datetime(1970, 1, 1, tzinfo=UTC)
    when = datetime.fromisoformat(str(stamp))
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def report_id(results_sha256: str) -> str:
    """A short identifier of the report, derived from the results it presents."""
    return f"XA-{results_sha256[:12].upper()}"



def attached(pdf: bytes, name: str) -> bytes | None:
    """The bytes of the file ``name`` attached to the PDF whose bytes are ``pdf``, ``None``
    when it has none.

    Reads with pypdf (the ``verify`` extra: :class:`~xaudit.extras.MissingExtraError`
    without it); a file that is not a readable PDF raises :class:`ValueError`.
    """
    require_extra("verify", "reading the files attached to report.pdf")
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        found = PdfReader(io.BytesIO(pdf)).attachments.get(name)
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a readable PDF: {exc}") from None
    return found[0] if found else None
