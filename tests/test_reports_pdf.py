"""The example audit's report: archival PDF, self-contained HTML, CI outputs, reproducibility.

Each property is read back with a tool other than the one that wrote it: pypdf for the PDF's
XMP metadata, fonts, attachments and outline; an XML Schema validator for junit.xml; Python's
HTML parser for the page's references.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("weasyprint")
pytest.importorskip("sklearn")
pypdf = pytest.importorskip("pypdf")
xmlschema = pytest.importorskip("xmlschema")

from reports_support import make_result, pdf_text, xmp_root  # noqa: E402

import xaudit  # noqa: E402
from xaudit import Host, ReportSection, create_host, hookimpl  # noqa: E402
from xaudit.results import AuditResult  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "examples" / "diabetes" / "audit.yaml"
SECTIONS = ("Cover and document control", "Executive summary", "Model", "Data", "Methods",
            "Global explanations", "Local explanations", "Fairness evidence", "Images and text",
            "Faithfulness and sanity checks", "Stability and uncertainty",
            "Limitations and caveats", "Glossary",
            "Technical appendix: parameters, facts and counterfactuals",
            "Reproducibility appendix", "Sign-off",
            "Regulatory mapping appendix")
NS = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
      "pdfaid": "http://www.aiim.org/pdfa/ns/id/"}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example suite run once, with every output its report block asks for."""
    out = tmp_path_factory.mktemp("example")
    xaudit.run_suite(SUITE, out_dir=out)
    return out


@pytest.fixture(scope="module")
def pages(example: Path) -> list[str]:
    """The text of each page of the example's PDF (extracted once)."""
    return pdf_text(example / "report.pdf")


def test_run_writes_every_output(example: Path) -> None:
    names = {p.name for p in example.iterdir()}
    assert {"results.json", "arrays.npz", "report.html", "report.pdf", "summary.md",
            "junit.xml"} <= names


def test_pdf_identifies_as_pdf_a_3b(example: Path) -> None:
    root = xmp_root((example / "report.pdf").read_bytes())
    found = {}
    for description in root.iter(f"{{{NS['rdf']}}}Description"):
        for key in ("part", "conformance"):
            value = description.get(f"{{{NS['pdfaid']}}}{key}")
            if value is not None:
                found[key] = value
    assert found == {"part": "3", "conformance": "B"}


def test_pdf_metadata(example: Path) -> None:
    reader = pypdf.PdfReader(str(example / "report.pdf"))
    info = reader.metadata
    assert info is not None
    assert info.title == "Model audit report: diabetes-progression"
    assert info.author == "xaudit example"
    assert "PASSED" in (info.subject or "")
    assert "shap.tree" in str(info.get("/Keywords"))
    finished = AuditResult.load(example).provenance["finished_at"]
    stamp = finished[:19].replace("-", "").replace(":", "").replace("T", "")
    assert str(info.get("/CreationDate")).startswith(f"D:{stamp}")
    assert reader.trailer["/Root"]["/Lang"] == "en"


def _fonts(reader: pypdf.PdfReader) -> dict[str, dict[str, object]]:
    fonts = {}
    for page in reader.pages:
        resources = page.get("/Resources", {})
        for font in resources.get("/Font", {}).values():
            font = font.get_object()
            for descendant in font.get("/DescendantFonts", [font]):
                descendant = descendant.get_object()
                fonts[str(descendant["/BaseFont"])] = descendant["/FontDescriptor"].get_object()
    return fonts


def test_every_font_is_embedded(example: Path) -> None:
    fonts = _fonts(pypdf.PdfReader(str(example / "report.pdf")))
    assert fonts, "the PDF uses no font"
    for name, descriptor in fonts.items():
        assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor), name


def test_attachments_are_results_and_suite(example: Path) -> None:
    reader = pypdf.PdfReader(str(example / "report.pdf"))
    attached = {name: data[0] for name, data in reader.attachments.items()}
    assert attached == {"results.json": (example / "results.json").read_bytes(),
                        "suite.yaml": SUITE.read_bytes()}
    catalog = reader.trailer["/Root"]
    relationships = {str(spec.get_object()["/F"]): str(spec.get_object()["/AFRelationship"])
                     for spec in catalog["/AF"]}
    assert relationships == {"results.json": "/Data", "suite.yaml": "/Data"}


def test_results_hash_is_printed_in_the_body(example: Path, pages: list[str]) -> None:
    digest = hashlib.sha256((example / "results.json").read_bytes()).hexdigest()
    assert digest in (example / "report.html").read_text()
    text = "".join(pages).replace("\n", "")
    assert digest in text


def test_page_count_and_table_of_contents(example: Path, pages: list[str]) -> None:
    reader = pypdf.PdfReader(str(example / "report.pdf"))
    assert 10 <= len(pages) <= 25  # six explainers, seven checks: the page budget (issue 15)
    assert all(f"Page {i} of {len(pages)}" in text for i, text in enumerate(pages, start=1))
    assert all("diabetes-progression" in text for text in pages[1:])  # running header
    toc = pages[1]
    assert "Contents" in toc
    for number, title in enumerate(SECTIONS, start=1):
        line = next(t for t in toc.splitlines() if t.startswith(f"{number}. {title}"))
        listed = int(line.rsplit(" ", 1)[-1].strip("."))
        heading = f"{number}. {title}"
        assert heading in pages[listed - 1], (title, listed)
    outline = [item.title for item in _flat(reader.outline)]
    assert [f"{i}. {t}" for i, t in enumerate(SECTIONS, start=1)] == \
        [t for t in outline if t[0].isdigit()]


def test_every_table_fits_and_no_page_is_left_mostly_empty(example: Path) -> None:
    """Read from WeasyPrint's layout of the example's own page: no table box past the page's
    content box; no page under a third full but the last."""
    weasyprint = pytest.importorskip("weasyprint")
    from layout_support import page_fill, table_overflows

    fetcher = weasyprint.URLFetcher(allowed_protocols=["data"])
    document = weasyprint.HTML(string=(example / "report.html").read_text(),
                               url_fetcher=fetcher).render()
    assert table_overflows(document) == []
    fills = page_fill(document)
    assert [(page, round(f, 2)) for page, f in enumerate(fills[:-1], start=1) if f < 1 / 3] == []


def _flat(items: list[object]) -> list[object]:
    flat: list[object] = []
    for item in items:
        flat += _flat(item) if isinstance(item, list) else [item]
    return flat


def test_junit_is_valid_against_the_schema(example: Path) -> None:
    schema = xmlschema.XMLSchema(str(ROOT / "tests" / "data" / "junit.xsd"))
    schema.validate(str(example / "junit.xml"))


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href", "action")]


def test_html_is_self_contained(example: Path) -> None:
    page = (example / "report.html").read_text()
    assert "http://" not in page
    assert "https://" not in page
    parser = _References()
    parser.feed(page)
    assert not {"script", "link", "iframe", "object", "embed"} & parser.tags
    assert parser.urls, "expected in-page links (table of contents)"
    assert all(url.startswith(("#", "data:")) for url in parser.urls)
    for target in re.findall(r"url\(\s*[\"']?([^\"')]{0,16})", page):
        assert target.startswith(("data:", "#")), target
    assert page.count("<svg") >= 5
    assert "@font-face" in page


@pytest.mark.slow
def test_rerender_is_byte_identical_and_timed(example: Path, tmp_path: Path) -> None:
    result = AuditResult.load(example)
    started = time.perf_counter()
    first = xaudit.render(result, tmp_path / "a", formats=("html", "pdf", "md", "junit"))
    elapsed = time.perf_counter() - started
    print(f"\nexample report (html + pdf + md + junit) rendered in {elapsed:.2f} s")
    time.sleep(1.1)
    again = AuditResult.load(example)
    second = xaudit.render(again, tmp_path / "b", formats=("html", "pdf", "md", "junit"))
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
        if a.name != "manifest.json":  # each folder's manifest lists the files it holds
            assert a.read_bytes() == (example / a.name).read_bytes(), f"{a.name}: fresh vs loaded"


class _TitleOnly(ReportSection):
    """A third-party section: the smallest report that still has a heading and a table."""

    name = "probe.title"
    title = "Probe section"
    template = "probe_title.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        return {"suite": result.suite_name}


class _ProbePlugin:
    __name__ = "probe_report_plugin"
    template_dir = None

    @hookimpl
    def xaudit_register_report_sections(self, registry: Any) -> None:
        registry.add(_TitleOnly)


@pytest.fixture(scope="module")
def small_host(tmp_path_factory: pytest.TempPathFactory) -> tuple[Host, Path]:
    """A host whose only report section is a plugin's, to test PDF profiles quickly."""
    folder = tmp_path_factory.mktemp("templates")
    (folder / "probe_title.html.j2").write_text("<p>Suite {{ ctx.suite }}.</p>")
    host = create_host(plugins=[_ProbePlugin()], block=["xaudit.reports.builtin_sections"],
                       autoload=False)
    return host, folder


@pytest.mark.parametrize(("variant", "ns", "expected"), [
    ("pdf/a-3a", NS["pdfaid"], {"part": "3", "conformance": "A"}),
    ("pdf/ua-1", "http://www.aiim.org/pdfua/ns/id/", {"part": "1"}),
    ("plain", None, None)])
def test_other_pdf_variants(variant: str, ns: str | None, expected: dict[str, str] | None,
                            small_host: tuple[Host, Path], tmp_path: Path) -> None:
    host, folder = small_host
    result = make_result(["a", "b", "c"], n=4)
    path, manifest = xaudit.render(result, tmp_path, formats=("pdf",), pdf_variant=variant,
                                   host=host, template_dir=folder)
    assert manifest.name == "manifest.json"
    data = path.read_bytes()
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert set(reader.attachments) == {"results.json", "suite.json"}
    assert "Suite report-test." in "".join(page.extract_text() for page in reader.pages)
    if ns is None:
        assert b"pdfaid" not in data
        assert b"pdfuaid" not in data
        return
    assert bool(reader.trailer["/Root"]["/MarkInfo"]["/Marked"])  # tagged for accessibility
    found = {k.split("}")[1]: v for d in xmp_root(data).iter() for k, v in d.attrib.items()
             if k.startswith(f"{{{ns}}}")}
    assert found == expected


def test_unknown_variant_is_refused(tmp_path: Path) -> None:
    with pytest.raises(xaudit.InputError, match="pdf/a-3b"):
        xaudit.render(make_result(["a"]), tmp_path, formats=("pdf",), pdf_variant="pdf/a-2b")
