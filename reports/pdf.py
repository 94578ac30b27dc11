"""``report.pdf``: the report page laid out by WeasyPrint, PDF/A-3b by default.

PDF/A-3 (ISO 19005-3) is the archival profile that allows attachments of any type, so the PDF
carries ``results.json`` and the suite file with relationship ``Data``: the report and the
numbers it was rendered from travel as one file. (PDF/A-2b would drop non-PDF attachments.)

Reproducibility: every date comes from the run, not the clock. The page's
``dcterms.created``/``modified`` give the document dates, attachments get the same date, and
``SOURCE_DATE_EPOCH`` is set while rendering so that font subsetting stamps fonts with it too.
The PDF identifier is a digest of the content. The same results give the same bytes.

The sign-off's signature boxes become empty signature fields that PDF readers can sign
(:mod:`xaudit.reports.signature_fields`), appended as one incremental update, in the
untagged variants (:data:`SIGNABLE_VARIANTS`): the tagged ones (PDF/A-3a, PDF/UA-1) would need
each widget in the structure tree, which the fields do not yet join.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ..errors import InputError
from .embedding import Embedded
from .signature_fields import add_signature_fields, signature_places

VARIANTS: dict[str, str | None] = {
    "pdf/a-3b": "pdf/a-3b",
    "pdf/a-3a": "pdf/a-3a",
    "pdf/ua-1": "pdf/ua-1",
    "plain": None,
}
RELATIONSHIP = "Data"
SIGNABLE_VARIANTS = frozenset({"pdf/a-3b", "plain"})
"""The variants whose sign-off gets signature fields."""


@contextmanager
def source_date_epoch(when: datetime) -> Iterator[None]:
    """Set ``SOURCE_DATE_EPOCH`` to ``when`` for the duration of the block."""
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(int(when.timestamp()))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


def render_pdf(html: str, variant: str, attachments: list[Embedded], when: datetime) -> bytes:
    """The PDF of ``html`` in ``variant``, with ``attachments`` embedded, dated ``when``."""
    try:
        import weasyprint
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise InputError("report.pdf needs WeasyPrint: pip install 'xaudit[pdf]' "
                         f"(or leave 'pdf' out of report.formats): {exc}") from None
    if variant not in VARIANTS:
        raise InputError(f"unknown PDF variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    naive = when.replace(tzinfo=None)
    # A WeasyPrint Attachment is consumed by one render: build fresh ones every time.
    files = [weasyprint.Attachment(file_obj=io.BytesIO(item.data), name=item.name,
                                   description=item.description, created=naive,
                                   modified=naive, relationship=RELATIONSHIP)
             for item in attachments]
    options: dict[str, Any] = {"attachments": files, "pdf_variant": VARIANTS[variant]}
    if VARIANTS[variant] is None:
        options["pdf_identifier"] = True
    unknown = set(options) - set(weasyprint.DEFAULT_OPTIONS)
    if unknown:  # WeasyPrint only logs unknown options; refuse them here instead
        raise InputError(f"unknown WeasyPrint option(s): {', '.join(sorted(unknown))}")
    fetcher = weasyprint.URLFetcher(allowed_protocols=["data"])
    with source_date_epoch(when):
        document = weasyprint.HTML(string=html, url_fetcher=fetcher).render()
        data: bytes = document.write_pdf(**options)
    if variant not in SIGNABLE_VARIANTS:
        return data
    return add_signature_fields(data, signature_places(document))
