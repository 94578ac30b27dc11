"""Empty signature fields in ``report.pdf``, one per sign-off role, that PDF readers can sign.

The sign-off table marks each role's signature cell with a box whose id is
``signature-<role>`` (:data:`SIGNATURE_ROLES`). After WeasyPrint has laid the page out,
:func:`signature_places` reads where those boxes landed (its page anchors), and
:func:`add_signature_fields` appends, as one incremental update (ISO 32000-1, 7.5.6), an
interactive form (``/AcroForm``) with one signature field (``/FT /Sig``, ISO 32000-1, 12.7.4.5)
per role, each merged with its widget annotation on that spot.

PDF/A-3 (ISO 19005-3, 6.3 and 6.4) permits signature fields: each widget is printable
(``/F 4``) and carries its own normal appearance (an empty form XObject the size of the
field), and the form does not ask readers to build appearances (no ``NeedAppearances``). The
update is a pure function of the PDF and the places, so re-rendering stays byte-identical; the
document's metadata (``/Info``, XMP) is not touched.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..safe_text import one_line

SIGNATURE_ROLES: tuple[tuple[str, str], ...] = (
    ("prepared_by", "Prepared by"), ("reviewed_by", "Reviewed by (independent validator)"),
    ("approved_by", "Approved by"))
"""Each sign-off role's documentation field and its label; one signature field each."""
ANCHOR_PREFIX = "signature-"
_PX_TO_PT = 0.75  # CSS pixels (1/96 in) to PDF points (1/72 in)


@dataclass(frozen=True)
class SignaturePlace:
    """Where one role's signature box is: page index and its edges in points, measured from the
    page's top-left corner (CSS coordinates)."""

    role: str
    page: int
    left: float
    top: float
    right: float
    bottom: float


def signature_places(document: Any) -> list[SignaturePlace]:
    """The signature boxes of a rendered WeasyPrint ``document``, in role order (roles whose
    box is not on any page are left out)."""
    found: dict[str, SignaturePlace] = {}
    for index, page in enumerate(document.pages):
        for anchor, box in page.anchors.items():
            role = anchor.removeprefix(ANCHOR_PREFIX)
            if anchor.startswith(ANCHOR_PREFIX) and role not in found:
                found[role] = SignaturePlace(role, index, *(v * _PX_TO_PT for v in box))
    return [found[role] for role, _ in SIGNATURE_ROLES if role in found]


def add_signature_fields(pdf: bytes, places: Sequence[SignaturePlace]) -> bytes:
    """``pdf`` with one empty signature field per place, appended as an incremental update
    whose trailer repeats the previous one's entries (ISO 32000-1, 7.5.6); ``pdf`` unchanged
    when there are no places."""
    if not places:
        return pdf
    from pypdf import PdfReader
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    reader = PdfReader(io.BytesIO(pdf))
    trailer: Any = reader.trailer  # pypdf types its entries as bare PdfObjects
    size = int(trailer["/Size"])
    added: dict[int, Any] = {}

    def add(obj: Any) -> IndirectObject:
        nonlocal size
        added[size] = obj
        size += 1
        return IndirectObject(size - 1, 0, reader)

    pages: dict[Any, DictionaryObject] = {}  # by the page's indirect reference
    fields = ArrayObject()
    for place in places:
        page: Any = reader.pages[place.page]
        copy = pages.setdefault(page.indirect_reference, DictionaryObject(page))
        listed: Any = copy.get("/Annots")
        annotations = ArrayObject(listed.get_object() if listed is not None else [])
        annotations.append(add(_field(place, float(page.mediabox.top),
                                      page.indirect_reference, add)))
        copy[NameObject("/Annots")] = annotations
        fields.append(annotations[-1])
    catalog = DictionaryObject(trailer["/Root"].get_object())
    catalog[NameObject("/AcroForm")] = add(DictionaryObject({NameObject("/Fields"): fields}))
    changed: dict[int, Any] = {ref.idnum: page for ref, page in pages.items()}
    changed[trailer.raw_get("/Root").idnum] = catalog
    previous = int(pdf[pdf.rindex(b"startxref") + 9:].split()[0])
    return pdf + _increment(len(pdf), previous, {**changed, **added}, trailer, size)


def _field(place: SignaturePlace, height: float, page: Any, add: Any) -> Any:
    """The merged signature field and widget of ``place`` (its appearance added via ``add``)."""
    from pypdf.generic import (
        ArrayObject,
        DecodedStreamObject,
        DictionaryObject,
        FloatObject,
        NameObject,
        NumberObject,
        TextStringObject,
    )

    rect = [place.left, height - place.bottom, place.right, height - place.top]
    appearance = DecodedStreamObject()
    appearance.update({
        NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Form"),
        NameObject("/BBox"): ArrayObject([FloatObject(0), FloatObject(0),
                                          FloatObject(round(rect[2] - rect[0], 3)),
                                          FloatObject(round(rect[3] - rect[1], 3))]),
        NameObject("/Resources"): DictionaryObject()})
    return DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Widget"),
        NameObject("/FT"): NameObject("/Sig"), NameObject("/T"): TextStringObject(place.role),
        NameObject("/TU"): TextStringObject(dict(SIGNATURE_ROLES)[place.role]),
        NameObject("/F"): NumberObject(4),
        NameObject("/Rect"): ArrayObject([FloatObject(round(v, 3)) for v in rect]),
        NameObject("/P"): page,
        NameObject("/AP"): DictionaryObject({NameObject("/N"): add(appearance)})})


def _increment(offset: int, previous: int, objects: dict[int, Any], trailer: Any,
               size: int) -> bytes:
    """The bytes of an update that starts at ``offset``: ``objects`` by number, then a
    cross-reference stream (object ``size``) whose dictionary keeps the entries of ``trailer``,
    the previous one, at ``previous``."""
    import struct

    from pypdf.generic import ArrayObject, NameObject, NumberObject, StreamObject

    out = io.BytesIO()
    positions: dict[int, int] = {}
    for number in sorted(objects):
        positions[number] = offset + out.tell()
        out.write(f"{number} 0 obj\n".encode())
        objects[number].write_to_stream(out)
        out.write(b"\nendobj\n")
    positions[size] = offset + out.tell()  # the cross-reference stream itself
    numbers = sorted(positions)
    index: list[int] = []
    for number in numbers:
        if index and index[-2] + index[-1] == number:
            index[-1] += 1
        else:
            index += [number, 1]
    entries: dict[Any, Any] = {NameObject(k): v for k, v in trailer.items()
               if k not in ("/Prev", "/Index", "/W", "/Filter", "/Length", "/DecodeParms",
                            "/XRefStm")}
    stream = StreamObject.initialize_from_dictionary({
        **entries, NameObject("/Type"): NameObject("/XRef"),
        NameObject("/Size"): NumberObject(size + 1),
        NameObject("/Prev"): NumberObject(previous),
        NameObject("/Index"): ArrayObject([NumberObject(n) for n in index]),
        NameObject("/W"): ArrayObject([NumberObject(1), NumberObject(4), NumberObject(1)]),
        "__streamdata__": b"".join(struct.pack(">BIB", 1, positions[n], 0) for n in numbers)})
    out.write(f"{size} 0 obj\n".encode())
    stream.write_to_stream(out)
    out.write(f"\nendobj\nstartxref\n{positions[size]}\n%%EOF\n".encode())
    return out.getvalue()


@dataclass(frozen=True)
class SignatureField:
    """One signature field found in a PDF: its name, and who signed it (empty: unsigned)."""

    name: str
    signer: str = ""
    signed_at: str = ""

    @property
    def signed(self) -> bool:
        """Whether the field holds a signature (a ``/V`` value)."""
        return bool(self.signer)


def signature_fields(pdf: bytes) -> list[SignatureField]:
    """Every signature field (``/FT /Sig``) of ``pdf``'s interactive form: a filled one (with a
    ``/V`` signature dictionary) names its signer (``/Name``, else "an unnamed signer") and
    time (``/M``). Raises ``ValueError`` when ``pdf`` cannot be read."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        fields = PdfReader(io.BytesIO(pdf)).get_fields() or {}
    except (PdfReadError, OSError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot be read as a PDF: {exc}") from None
    found = []
    for name, entry in sorted(fields.items()):
        if entry.get("/FT") != "/Sig":
            continue
        value = entry.get("/V")
        value = value.get_object() if value is not None else None
        if not isinstance(value, dict):
            found.append(SignatureField(str(name)))
            continue
        found.append(SignatureField(str(name), str(value.get("/Name") or "an unnamed signer"),
                                    str(value.get("/M") or "")))
    return found


def signature_line(fields: Sequence[SignatureField]) -> str:
    """One line on a PDF's signature fields: ``signed by Grace (approved_by, D:2025...);
    unsigned signature fields: 2``, or ``no signature fields``."""
    if not fields:
        return "no signature fields"
    signed = [f"{one_line(f.signer)} ({one_line(f.name)}"
              + (f", {one_line(f.signed_at)})" if f.signed_at else ")")
              for f in fields if f.signed]
    unsigned = sum(not f.signed for f in fields)
    parts = ([f"signed by {'; '.join(signed)}"] if signed else []) + (
        [f"unsigned signature fields: {unsigned}"] if unsigned else [])
    return "; ".join(parts)
