"""How a report is laid out: options from the suite's ``report`` block, with overrides."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from ..errors import InputError
from ..results import AuditResult
from ..suite import DocumentationSpec, PdfVariant, ReportSpec, Suite

PDF_VARIANTS: tuple[str, ...] = get_args(PdfVariant)


@dataclass(frozen=True)
class ReportOptions:
    """Layout options of the HTML and PDF report (see ``ReportSpec`` for their meaning)."""

    pdf_variant: str = "pdf/a-3b"
    template_dir: Path | None = None
    top_k: int = 10
    local_rows: int = 3
    max_subjects: int = 50

    @classmethod
    def from_result(cls, result: AuditResult, **overrides: Any) -> ReportOptions:
        """The layout options saved with the suite (``pdf_variant``, ``top_k``, ``local_rows``,
        ``max_subjects``), each overridable.

        ``template_dir`` is never read from the result: a results folder is data, and a
        template folder named in it could come from anyone. It comes only from ``overrides``
        (``--template-dir``, or the suite the user runs, see :meth:`for_suite`).
        """
        try:
            spec = ReportSpec.model_validate(result.suite.get("report") or {})
        except ValidationError as exc:
            raise InputError(f"saved suite has an invalid report block: {exc}") from None
        options = cls(pdf_variant=spec.pdf_variant, top_k=spec.top_k,
                      local_rows=spec.local_rows, max_subjects=spec.max_subjects)
        given = {k: v for k, v in overrides.items() if v is not None}
        if "template_dir" in given:
            given["template_dir"] = Path(given["template_dir"])
        options = replace(options, **given)
        if options.pdf_variant not in PDF_VARIANTS:
            raise InputError(f"unknown PDF variant {options.pdf_variant!r}; "
                             f"choose one of {', '.join(PDF_VARIANTS)}")
        if options.template_dir is not None and not options.template_dir.is_dir():
            raise InputError(f"template folder {options.template_dir} does not exist")
        return options

    @classmethod
    def for_suite(cls, result: AuditResult, suite: Suite) -> ReportOptions:
        """Options for a run of ``suite``: its ``report.template_dir`` resolved against the
        suite file's folder (never the working directory)."""
        folder = suite.report.template_dir
        return cls.from_result(result, template_dir=None if folder is None else
                               suite.base_dir / folder)


def documentation_of(result: AuditResult) -> DocumentationSpec | None:
    """The suite's ``documentation`` block, or ``None`` when it has none."""
    block = result.suite.get("documentation")
    if not block:
        return None
    try:
        return DocumentationSpec.model_validate(block)
    except ValidationError as exc:
        raise InputError(f"saved suite has an invalid documentation block: {exc}") from None
