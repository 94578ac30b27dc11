"""How a report is laid out: options from the suite's ``report`` block, with overrides."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from ..errors import InputError
from ..results import AuditResult
from ..suite import DocumentationSpec, PdfVariant, ReportSpec

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
    def from_result(cls, result: AuditResult, base_dir: Path | None = None,
                    **overrides: Any) -> ReportOptions:
        """Options saved with the suite, ``template_dir`` resolved against ``base_dir``."""
        try:
            spec = ReportSpec.model_validate(result.suite.get("report") or {})
        except ValidationError as exc:
            raise InputError(f"saved suite has an invalid report block: {exc}") from None
        folder = None
        if spec.template_dir is not None:
            folder = Path(spec.template_dir)
            if base_dir is not None and not folder.is_absolute():
                folder = base_dir / folder
        options = cls(pdf_variant=spec.pdf_variant, template_dir=folder, top_k=spec.top_k,
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


def documentation_of(result: AuditResult) -> DocumentationSpec | None:
    """The suite's ``documentation`` block, or ``None`` when it has none."""
    block = result.suite.get("documentation")
    if not block:
        return None
    try:
        return DocumentationSpec.model_validate(block)
    except ValidationError as exc:
        raise InputError(f"saved suite has an invalid documentation block: {exc}") from None
