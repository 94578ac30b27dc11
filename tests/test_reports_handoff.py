"""The report draws what plugins hand over (curves, areas) and describes them from declared fields.

A deletion check is run on the exact attributions of a linear model (tests/reports_support.py);
what the report must show is read from the check's own result (its details, its hand-off), never
copied from a previous rendering. Descriptions come from the plugin classes' ``description``, so
rewriting a module's docstring must leave the rendered report unchanged.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from reports_support import make_result

import xaudit
from xaudit import AuditResult, create_host
from xaudit.reports.options import ReportOptions
from xaudit.reports.section_base import RenderContext
from xaudit.reports.sections_checks import FaithfulnessSection
from xaudit.reports.templating import build_environment
from xaudit.results import CheckResult

NAMES = ("a", "b", "c", "d")


def with_deletion(n: int = 8) -> tuple[AuditResult, CheckResult]:
    """The hand-built audit plus a deletion check of its explanation (linear model, exact)."""
    result = make_result(NAMES, n=n)
    explanation = result.explanations["abl"]
    weights = explanation.values[0, :, 0] / explanation.inputs[0]  # values are x * w

    def model(X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ weights[:, None] + 1.5

    check = xaudit.check("deletion", model, explanation, seed=3, steps=4, n_random=3,
                         label="deletion@abl", explainer_id="abl")
    result.checks.append(check)
    result.suite["checks"].append({"check": "deletion", "explainer": "abl"})
    return result, check


def section_html(result: AuditResult) -> tuple[dict[str, Any], str]:
    """The faithfulness section's context and its body, rendered on its own."""
    section = FaithfulnessSection()
    section.bind(RenderContext(result, ReportOptions.from_result(result), None, create_host(),
                               "0" * 64, "XA-TEST"))
    context = section.context(result)
    body = build_environment(None, []).get_template(section.template).render(
        ctx=context, section=None, report={})
    return context, body


def text_of(svg: str) -> str:
    """The text a figure shows (matplotlib writes labels as SVG text)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", svg))


def areas_table(body: str) -> str:
    start = body.index("Areas read off the curve beside")
    return body[start:body.index("</table>", start)]


def test_the_deletion_curve_is_drawn_with_both_series_band_and_areas(tmp_path: Path) -> None:
    result, check = with_deletion()
    context, body = section_html(result)
    entry = next(e for e in context["entries"] if e["check"] is check)
    (curve,) = entry["curves"]
    shown = text_of(str(curve["figure"]))
    explained, randomized = check.handoff.curves[0].series
    assert randomized.band is not None
    for label in (explained.label, randomized.label, randomized.band.label,
                  check.handoff.curves[0].x_label, check.handoff.curves[0].y_label):
        assert label in shown, label
    assert str(curve["figure"]).count("<path") >= 3  # two lines and the band, at least
    table = areas_table(body)
    for key in ("area", "random_area", "area_from_start"):  # the check's own numbers
        assert f"{check.details[key]:.6g}" in table, key
    assert table.count("<tr>") == 3
    assert "Per-row values of deletion@abl" in body  # the gains' distribution stays

    xaudit.render(result, tmp_path, formats=("html",))
    page = (tmp_path / "report.html").read_text()
    faithfulness = page[page.index('id="sec-faithfulness"'):page.index('id="sec-stability"')]
    assert "could not be rendered" not in faithfulness
    article = faithfulness[faithfulness.index("deletion@abl"):]
    assert check.handoff.curves[0].title in html.unescape(article)
    before_caption = article[:article.index(html.escape(check.handoff.curves[0].title))]
    figure = before_caption[before_caption.rindex("<svg"):]  # the figure the caption is of
    assert explained.label in text_of(figure)
    assert randomized.label in text_of(figure)
    assert f"{check.details['random_area']:.6g}" in areas_table(article)


def test_a_check_without_a_curve_still_renders(tmp_path: Path) -> None:
    result = make_result(NAMES, n=8)
    (check,) = result.checks
    assert check.handoff.curves == ()
    context, body = section_html(result)
    (entry,) = context["entries"]
    assert entry["curves"] == []
    assert entry["distribution"] is not None
    assert "Areas read off" not in body
    assert "Per-row values of completeness@abl" in body
    xaudit.render(result, tmp_path, formats=("html",))
    page = (tmp_path / "report.html").read_text()
    faithfulness = page[page.index('id="sec-faithfulness"'):page.index('id="sec-stability"')]
    assert "could not be rendered" not in faithfulness
    assert faithfulness.count("<svg") == 1


def _mentions(text: str, name: str) -> bool:
    words = {name, name.replace("_", " ")}
    return any(re.search(rf"\b{re.escape(w)}\b", text, flags=re.IGNORECASE) for w in words)


def test_every_builtin_declares_its_own_description() -> None:
    host = create_host(autoload=False)
    checks = list(host.checks.names())
    registered = [*(("explainer", n, host.explainers.get(n)) for n in host.explainers.names()),
                  *(("check", n, host.checks.get(n)) for n in checks)]
    assert len(registered) >= 39
    for kind, name, cls in registered:
        assert cls.description.strip(), f"{kind} {name} declares no description"
        assert "**" not in cls.description, name  # plain text, not markdown or reST
        assert "``" not in cls.description, name
        others = [c for c in checks if c != name and _mentions(cls.description, c)]
        assert not others, f"{kind} {name}'s description names {others}"


def test_editing_a_module_docstring_does_not_change_the_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = create_host(autoload=False)
    result, _ = with_deletion(n=6)
    before = _sections(result, tmp_path / "before", host)
    for cls in (host.explainers.get("ablation"), host.checks.get("completeness"),
                host.checks.get("deletion")):
        monkeypatch.setattr(sys.modules[cls.__module__], "__doc__",
                            "Title.\n\nAN EDITED DOCSTRING that the report must not print.\n")
        assert cls.description in html.unescape(before)
    after = _sections(result, tmp_path / "after", host)
    assert "AN EDITED DOCSTRING" not in after
    assert after == before


def _sections(result: AuditResult, out: Path, host: Any) -> str:
    xaudit.render(result, out, formats=("html",), host=host)
    page = (out / "report.html").read_text()
    return page[page.index('id="sec-methods"'):page.index('id="sec-global"')] + \
        page[page.index('id="sec-faithfulness"'):page.index('id="sec-stability"')]
