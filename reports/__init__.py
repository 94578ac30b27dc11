"""Report outputs: ``results.json`` + ``arrays.npz``, ``report.html``, ``report.pdf``,
``summary.md`` and ``junit.xml``.

The HTML and PDF reports render from the same :class:`~xaudit.results.AuditResult` (freshly run
or loaded from disk) through Jinja2 templates; see ``docs/reports.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..results import AuditResult
from .junit import write_junit
from .markdown import write_summary
from .options import ReportOptions

if TYPE_CHECKING:
    from ..host import Host

HTML_FILE = "report.html"
PDF_FILE = "report.pdf"


def _write_json(result: AuditResult, out_dir: Path) -> Path:
    return result.save(out_dir)


WRITERS: dict[str, Callable[[AuditResult, Path], Path]] = {
    "json": _write_json,
    "md": write_summary,
    "junit": write_junit,
}
FORMATS: tuple[str, ...] = ("json", "html", "pdf", "md", "junit")


class _Report:
    """The HTML page and embedded files, built once for both the HTML and the PDF."""

    def __init__(self, result: AuditResult, options: ReportOptions, host: Host | None,
                 saved: Path | None) -> None:
        from .document import render_html
        from .embedding import results_file, suite_file

        results = results_file(result, saved)
        self.options = options
        self.attachments = [results, suite_file(result)]
        self.html = render_html(result, options, host, results)

    def write(self, fmt: str, result: AuditResult, out_dir: Path) -> Path:
        """Write ``report.html`` or ``report.pdf``."""
        if fmt == "html":
            path = out_dir / HTML_FILE
            path.write_bytes(self.html.encode("utf-8"))
            return path
        from .embedding import run_time
        from .pdf import render_pdf

        path = out_dir / PDF_FILE
        path.write_bytes(render_pdf(self.html, self.options.pdf_variant, self.attachments,
                                    run_time(result)))
        return path


def write_outputs(result: AuditResult, out_dir: Path, formats: Sequence[str], *,
                  options: ReportOptions | None = None, host: Host | None = None) -> list[Path]:
    """Write ``result`` into ``out_dir`` in each of ``formats``; returns the files written.

    ``options`` default to the saved suite's ``report`` block, without a template folder
    (:meth:`ReportOptions.from_result`); ``host`` supplies the report sections and the plugin
    descriptions (the default host when ``None``). The PDF embeds ``results.json`` byte for
    byte as written here (or as :meth:`AuditResult.save` would write it, when ``json`` is not
    among the formats).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"unknown report format(s) {', '.join(unknown)}; "
                         f"available: {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    report: _Report | None = None
    saved: Path | None = None
    for fmt in dict.fromkeys(formats):
        if fmt in WRITERS:
            written.append(WRITERS[fmt](result, out_dir))
            if fmt == "json":
                saved = written[-1]
            continue
        if report is None:
            from ..host import default_host

            report = _Report(result, options or ReportOptions.from_result(result),
                             host or default_host(), saved)
        written.append(report.write(fmt, result, out_dir))
    return written
