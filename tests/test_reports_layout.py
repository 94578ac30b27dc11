"""The report as laid out on paper: tables inside the page, pages not left mostly empty, each
check's own definition.

The layout is read from WeasyPrint's box tree (:mod:`layout_support`), the same layout the PDF
is written from, so the tests see what a reader sees: a table that CSS asks to be 100% wide but
whose cells cannot wrap still shows up as wider than the page.
"""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

weasyprint = pytest.importorskip("weasyprint")

from layout_support import page_fill, table_overflows  # noqa: E402
from reports_support import linear_explanation, make_result  # noqa: E402

import xaudit  # noqa: E402
from xaudit import create_host  # noqa: E402
from xaudit.results import AuditResult, CheckResult  # noqa: E402

CSS = (Path(xaudit.reports.__file__).parent / "static" / "report.css").read_text()
UNBROKEN = "model_randomization@an_explainer_with_a_long_identifier_and_no_spaces"


def layout(page: str) -> Any:
    """WeasyPrint's layout of an HTML page (nothing fetched from outside it)."""
    fetcher = weasyprint.URLFetcher(allowed_protocols=["data"])
    return weasyprint.HTML(string=page, url_fetcher=fetcher).render()


def render_html(result: AuditResult, tmp_path: Path, **options: Any) -> str:
    xaudit.render(result, tmp_path, formats=("html",), **options)
    return (tmp_path / "report.html").read_text()


def wide_result() -> AuditResult:
    """A result whose tables are as wide as data makes them: long unbroken feature names,
    per-row checks with long names (one column each in the segment table), segments, reasons
    and a hostile long parameter value."""
    names = [f"feature_{i}_{'x' * 40}" for i in range(6)]
    n = 12
    documentation = {
        "segments": [names[0], {"feature": names[1], "bins": [-5, -0.5, 0.0, 0.5, 5]}],
        "decision": {"output": "score", "adverse": "above", "threshold": 0.0},
        "reason_codes": {name: f"{name} is high" for name in names},
    }
    result = make_result(names, n=n, documentation=documentation)
    template = result.checks[0]
    for i in range(6):
        result.checks.append(dataclasses.replace(
            template, name=f"{UNBROKEN}_{i}", values=np.linspace(0, 1, n),
            params={"a_parameter_with_a_long_name": "v" * 90},
            details={"per_feature": list(np.linspace(0.1, 0.9, len(names)))}))
    return result


def test_every_table_of_a_wide_report_fits_the_page(tmp_path: Path) -> None:
    document = layout(render_html(wide_result(), tmp_path))
    assert table_overflows(document) == []


def test_a_table_wider_than_the_page_is_caught() -> None:
    """The detector fails a table whose cells cannot wrap: it is not vacuous."""
    cells = "".join(f"<td style='white-space: nowrap'>{UNBROKEN} {i}</td>" for i in range(6))
    page = f"<style>{CSS}</style><table class='too-wide'><tr>{cells}</tr></table>"
    found = table_overflows(layout(page))
    assert found
    assert {o.table for o in found} == {"too-wide"}
    assert max(o.excess_px for o in found) > 100
    # the report's own style wraps the same cells once they may wrap
    wrapping = page.replace(" style='white-space: nowrap'", "")
    assert table_overflows(layout(wrapping)) == []


def test_no_page_but_the_last_is_less_than_a_third_full(tmp_path: Path) -> None:
    names = [f"f{i}" for i in range(12)]
    extra = {"second": linear_explanation(names, 30, seed=1)[0]}
    page = render_html(make_result(names, n=30, extra=extra, report={"local_rows": 3}),
                       tmp_path)
    fills = page_fill(layout(page))
    assert len(fills) >= 5
    assert [round(f, 2) for f in fills[:-1] if f < 1 / 3] == []


def test_page_fill_measures_an_empty_page() -> None:
    page = "<p>one line</p><p style='break-before: page'>" + "text " * 3000 + "</p>"
    fills = page_fill(layout(f"<style>{CSS}</style>{page}"))
    assert fills[0] < 0.1
    assert fills[1] > 0.9


def _definitions(page: str) -> dict[str, str]:
    """Each check article's heading (the check's result name) and its definition paragraph."""
    found = {}
    for match in re.finditer(r'<article class="check">\s*<h3>([^<]*?) <span.*?</h3>(.*?)'
                             r"</article>", page, re.S):
        definition = re.search(r'<p class="definition">(.*?)</p>', match.group(2), re.S)
        found[match.group(1)] = html.unescape(definition.group(1)) if definition else ""
    return found


def test_each_check_shows_its_own_description_without_markdown(tmp_path: Path) -> None:
    """Every registered check's section shows the description its class declares, no other
    check's, and no markdown the PDF would print literally."""
    host = create_host()
    names = sorted(host.checks.names())
    result = make_result(["a", "b"])
    template = result.checks[0]
    result.checks = [CheckResult(name=f"{name}@abl", check=name, explainer="abl",
                                 direction=template.direction, status="pass", value=0.5,
                                 threshold=None, values=None, details={}, params={}, seed=1,
                                 model_calls=0, wall_time_s=0.0) for name in names]
    shown = _definitions(render_html(result, tmp_path, host=host))
    declared = {name: host.checks.get(name).description for name in names}
    assert set(shown) == {f"{name}@abl" for name in names}
    for name in names:
        text = shown[f"{name}@abl"]
        assert text == " ".join(declared[name].split()), name
        others = [o for o in names if o != name and declared[o]
                  and declared[o] not in declared[name]]
        assert not [o for o in others if declared[o] in text], name
        assert not re.search(r"\*\*|__|`|^#|\n\s*[-*] ", text), (name, text)
    assert len(set(declared.values())) == len(names)  # no two checks share one text
