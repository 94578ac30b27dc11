"""Report outputs: ``results.json`` + ``arrays.npz``, ``report.html``, ``report.pdf``,
``summary.md``, ``junit.xml`` and ``model_card.md`` + ``model_card.json``.

The HTML and PDF reports render from the same :class:`~xaudit.results.AuditResult` (freshly run
or loaded from disk) through Jinja2 templates; see ``docs/reports.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..extras import REPORT_EXTRAS, require_extra
from ..manifest import write_manifest
from ..output_folder import OutputFolder
from ..results import AuditResult
from .junit import JUNIT_FILE, junit_bytes
from .markdown import SUMMARY_FILE, summary_markdown
from .options import ReportOptions

if TYPE_CHECKING:
    from ..host import Host

HTML_FILE = "report.html"
PDF_FILE = "report.pdf"

WRITERS: dict[str, Callable[[AuditResult, OutputFolder], list[Path]]] = {
    "json": lambda result, folder: result.write_into(folder),
    "md": lambda result, folder: [folder.write(SUMMARY_FILE,
                                               summary_markdown(result).encode("utf-8"))],
    "junit": lambda result, folder: [folder.write(JUNIT_FILE, junit_bytes(result))],
}
FORMATS: tuple[str, ...] = ("json", "html", "pdf", "md", "junit", "model_card")


def write_model_card(result: AuditResult, folder: OutputFolder, host: Host) -> list[Path]:
    """``model_card.md`` and ``model_card.json`` (:mod:`xaudit.reports.model_card`), from the
    results and the saved suite's documentation block; ``host`` tells performance checks."""
    from .model_card import (
        MODEL_CARD_JSON,
        MODEL_CARD_MD,
        model_card,
        model_card_json,
        model_card_markdown,
    )
    from .options import documentation_of
    from .regulatory_evidence import check_kinds

    card = model_card(result, documentation_of(result), check_kinds(host))
    return [folder.write(MODEL_CARD_MD,
                         model_card_markdown(card, result.suite_name).encode("utf-8")),
            folder.write(MODEL_CARD_JSON, model_card_json(card))]


class _Report:
    """The HTML page and embedded files, built once for both the HTML and the PDF."""

    def __init__(self, result: AuditResult, options: ReportOptions, host: Host | None) -> None:
        from .document import render_html
        from .embedding import results_file, suite_file

        results = results_file(result)
        self.options = options
        self.attachments = [results, suite_file(result)]
        page = render_html(result, options, host, results)
        self.html, self.failed = page.html, page.failed

    def write(self, fmt: str, result: AuditResult, folder: OutputFolder) -> Path:
        """Write ``report.html`` or ``report.pdf``."""
        if fmt == "html":
            return folder.write(HTML_FILE, self.html.encode("utf-8"))
        from .embedding import run_time
        from .pdf import render_pdf

        return folder.write(PDF_FILE, render_pdf(self.html, self.options.pdf_variant,
                                                 self.attachments, run_time(result)))


class WrittenOutputs(list[Path]):
    """The files :func:`write_outputs` wrote, and the report sections that failed in them."""

    failed_sections: tuple[str, ...] = ()
    """One line per report section whose ``context`` or template raised (the report shows it
    with its error); ``xaudit report`` lists them on stderr and exits 3."""


def write_outputs(result: AuditResult, out: Path | OutputFolder, formats: Sequence[str], *,
                  options: ReportOptions | None = None, host: Host | None = None,
                  keep: bool = False, sign_key: Path | None = None) -> WrittenOutputs:
    """Write ``result`` in each of ``formats`` as the folder ``out``; returns the files written.

    ``out`` is a folder, or an :class:`~xaudit.output_folder.OutputFolder` the caller opened
    (so that the location was checked and locked before the run). The folder is replaced as a
    unit when every file is written: it then holds exactly these files, plus, with ``keep``
    (a folder path only), the files it held before that were not written again. Until then
    the previous folder stays as it was, also when writing fails or is interrupted.
    ``options`` default to the saved suite's ``report`` block, without a template folder
    (:meth:`ReportOptions.from_result`); ``host`` supplies the report sections and the plugin
    descriptions (the default host when ``None``). The PDF embeds ``results.json`` byte for
    byte as :meth:`AuditResult.save` writes it. ``manifest.json`` is written last, with the
    SHA-256 of every file written (and of the files carried with ``keep``, as the previous
    manifest recorded them), signed with the Ed25519 key file ``sign_key`` when given
    (:mod:`xaudit.manifest`).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"unknown report format(s) {', '.join(unknown)}; "
                         f"available: {', '.join(FORMATS)}")
    for fmt in formats:
        if fmt in REPORT_EXTRAS:
            require_extra(REPORT_EXTRAS[fmt], f"the {fmt} report")
    if not isinstance(out, OutputFolder):
        with OutputFolder(out, keep=keep) as folder:
            return write_outputs(result, folder, formats, options=options, host=host,
                                 sign_key=sign_key)
    written = WrittenOutputs()
    report: _Report | None = None
    for fmt in dict.fromkeys(formats):
        if fmt in WRITERS:
            written += WRITERS[fmt](result, out)
            continue
        from ..host import default_host

        if fmt == "model_card":
            written += write_model_card(result, out, host or default_host())
            continue
        if report is None:
            report = _Report(result, options or ReportOptions.from_result(result),
                             host or default_host())
        written.append(report.write(fmt, result, out))
        written.failed_sections = report.failed
    written += write_manifest(out, sign_key=sign_key)
    out.publish()
    return written
