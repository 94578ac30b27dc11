"""Sign-off that means something (issue 15, item 8): report.pdf carries one empty signature
field per role, still PDF/A-3b and byte-identical on re-rendering; ``xaudit verify`` reports
unsigned fields, and a field signed by a PDF tool (pypdf + a CMS signature from cryptography,
with a throwaway test key) as signed, by whom.

The PDFs are read back with pypdf, not with the code that wrote the fields.
"""

from __future__ import annotations

import datetime
import io
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("weasyprint")
pypdf = pytest.importorskip("pypdf")
pytest.importorskip("cryptography")

from reports_support import make_result, xmp_root  # noqa: E402

import xaudit  # noqa: E402
from xaudit.cli import main  # noqa: E402
from xaudit.reports.signature_fields import signature_fields  # noqa: E402
from xaudit.verify import verify_folder  # noqa: E402

ROLES = ["approved_by", "prepared_by", "reviewed_by"]
DOCUMENTATION = {"intended_use": "Rank applications.", "owner": "Risk",
                 "prepared_by": {"name": "Ada", "role": "developer", "date": "2025-02-01"}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("signoff")
    xaudit.render(make_result(["a", "b"], documentation=DOCUMENTATION), out,
                  formats=("json", "pdf"))
    return out


def test_one_empty_signature_field_per_role(folder: Path) -> None:
    reader = pypdf.PdfReader(folder / "report.pdf")
    form = reader.trailer["/Root"]["/AcroForm"]
    assert "/NeedAppearances" not in form  # PDF/A: appearances are given, not built
    fields = {f.get_object()["/T"]: f.get_object() for f in form["/Fields"]}
    assert sorted(fields) == ROLES
    for name, field in fields.items():
        assert field["/FT"] == "/Sig"
        assert "/V" not in field
        assert field["/Subtype"] == "/Widget"
        assert field["/F"] == 4  # printed, not hidden
        assert field["/AP"]["/N"].get_object()["/Subtype"] == "/Form"
        [page] = [p for p in reader.pages
                  if p.indirect_reference.idnum == field.raw_get("/P").idnum]
        assert field.indirect_reference.idnum in [a.idnum for a in page["/Annots"]]
        x0, y0, x1, y1 = (float(v) for v in field["/Rect"])
        box = page.mediabox
        assert float(box.left) <= x0 < x1 <= float(box.right), name
        assert float(box.bottom) <= y0 < y1 <= float(box.top), name
        assert field["/TU"].split(" (")[0] in page.extract_text()  # on its row of the table


def test_still_pdf_a_3b_with_one_appended_update(folder: Path) -> None:
    data = (folder / "report.pdf").read_bytes()
    part = xmp_root(data).find(".//{http://www.aiim.org/pdfa/ns/id/}part")
    described = xmp_root(data).iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    attributes = {k: v for d in described for k, v in d.attrib.items()}
    assert (part.text if part is not None else
            attributes.get("{http://www.aiim.org/pdfa/ns/id/}part")) == "3"
    assert data.count(b"%%EOF") == 2  # the written document and one incremental update
    trailers = [t for t in re.findall(rb"\d+ 0 obj\s*<<(.*?)>>\s*stream", data, flags=re.S)
                if re.search(rb"/Type\s*/XRef", t)]
    assert len(trailers) == 2
    for trailer in trailers:  # the update repeats the written trailer's Root, Info and ID
        assert b"/Root" in trailer
        assert b"/Info" in trailer
        assert b"/ID" in trailer
    assert b"/NeedAppearances" not in data
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert reader.metadata["/Producer"].startswith("WeasyPrint")
    assert "results.json" in reader.attachments


def test_rerendering_is_byte_identical(folder: Path, tmp_path: Path) -> None:
    result = xaudit.AuditResult.load(folder)
    xaudit.render(result, tmp_path, formats=("json", "pdf"))
    assert (tmp_path / "report.pdf").read_bytes() == (folder / "report.pdf").read_bytes()


def test_verify_reports_unsigned_fields(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = verify_folder(folder)
    assert found.ok
    assert [f.name for f in found.pdf_signatures or []] == ROLES
    assert not any(f.signed for f in found.pdf_signatures or [])
    assert main(["verify", str(folder)]) == 0
    assert "report.pdf: unsigned signature fields: 3" in capsys.readouterr().out


def _signed_by_a_pdf_tool(pdf: bytes, field_name: str, signer: str) -> bytes:
    """``pdf`` with ``field_name`` signed as a PDF reader does: an incremental update whose
    signature dictionary's ``/Contents`` is a detached CMS signature (made with a throwaway
    self-signed key) of every byte but itself, as ``/ByteRange`` says."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs7
    from cryptography.x509.oid import NameOID
    from pypdf.generic import (
        ArrayObject,
        ByteStringObject,
        DictionaryObject,
        NameObject,
        NumberObject,
        TextStringObject,
    )

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, signer)])
    now = datetime.datetime(2025, 3, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    size = 8192
    writer = pypdf.PdfWriter(pypdf.PdfReader(io.BytesIO(pdf)), incremental=True)
    signature = DictionaryObject({
        NameObject("/Type"): NameObject("/Sig"), NameObject("/Filter"): NameObject(
            "/Adobe.PPKLite"), NameObject("/SubFilter"): NameObject("/adbe.pkcs7.detached"),
        NameObject("/Name"): TextStringObject(signer),
        NameObject("/M"): TextStringObject("D:20250301120000Z"),
        NameObject("/ByteRange"): ArrayObject([NumberObject(1111111111)] * 4),
        NameObject("/Contents"): ByteStringObject(b"\0" * size)})
    for ref in writer.root_object["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field["/T"] == field_name:
            field[NameObject("/V")] = writer._add_object(signature)
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    placeholder = b"<" + b"00" * size + b">"
    start = data.rindex(placeholder)
    end = start + len(placeholder)
    ranges = f"[0 {start:010d} {end:010d} {len(data) - end:010d}]".encode()
    data = re.sub(rb"\[\s*1111111111 1111111111 1111111111 1111111111\s*\]",
                  lambda m: ranges.ljust(len(m.group(0))), data, count=1)
    assert len(data) == len(out.getvalue())
    signed_bytes = data[:start] + data[end:]
    cms = (pkcs7.PKCS7SignatureBuilder().set_data(signed_bytes)
           .add_signer(cert, key, hashes.SHA256())
           .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature]))
    assert len(cms) <= size
    return data[:start] + b"<" + cms.hex().encode().ljust(2 * size, b"0") + b">" + data[end:]


def test_a_signed_field_is_reported_with_its_signer(folder: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    signed = tmp_path / "signed"
    shutil.copytree(folder, signed)
    original = (folder / "report.pdf").read_bytes()
    (signed / "report.pdf").write_bytes(
        _signed_by_a_pdf_tool(original, "approved_by", "Grace Hopper"))
    fields = {f.name: f for f in signature_fields((signed / "report.pdf").read_bytes())}
    assert fields["approved_by"].signed
    assert fields["approved_by"].signer == "Grace Hopper"
    assert not fields["prepared_by"].signed
    found = verify_folder(signed)
    [finding] = found.findings  # the PDF changed: said, with what kind of change it is
    assert finding.path == "report.pdf"
    appended = len((signed / "report.pdf").read_bytes()) - len(original)
    assert f"the file as written is intact and {appended} bytes" in finding.problem
    assert main(["verify", str(signed)]) == 1
    out = capsys.readouterr().out
    assert ("report.pdf: signed by Grace Hopper (approved_by, D:20250301120000Z); "
            "unsigned signature fields: 2") in out


def test_a_pdf_edited_in_place_is_not_called_intact(folder: Path, tmp_path: Path) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(folder, edited)
    data = bytearray((folder / "report.pdf").read_bytes())
    data[200] ^= 1
    (edited / "report.pdf").write_bytes(bytes(data))
    problems = " ".join(f.problem for f in verify_folder(edited).findings)
    assert "changed since it was written" in problems
    assert "intact" not in problems
