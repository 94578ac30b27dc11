"""What the report says: escaping, crashes, many features, reasons, templates, media, CLI.

Results are built by hand (tests/reports_support.py) so that each test knows exactly what the
report must show; numbers are checked against plain numpy computations.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from reports_support import linear_explanation, make_result

import xaudit
from xaudit import AuditResult, ReportSection, create_host, hookimpl
from xaudit.cli import main
from xaudit.explanation import Explanation
from xaudit.handoff import (
    ChangeReason,
    Counterfactuals,
    Handoff,
    PairDependence,
    PartialDependence,
)
from xaudit.reports.analysis import mean_abs, rank_top
from xaudit.reports.builtin_sections import SECTIONS
from xaudit.reports.decisions import principal_reasons
from xaudit.suite import DecisionSpec, parse_suite

HOSTILE = ["<script>alert(1)</script>", "{{ 7*7 }}", "a&b\"c'd", "{% raw %}x", "plain"]


def render_html(result: AuditResult, tmp_path: Path, **options: Any) -> str:
    xaudit.render(result, tmp_path, formats=("html",), **options)
    return (tmp_path / "report.html").read_text()


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        assert not any(k.startswith("on") for k, _ in attrs), (tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_hostile_strings_are_escaped_everywhere(tmp_path: Path) -> None:
    result = make_result(HOSTILE, n=6, suite_name="<img src=x onerror=alert(2)>",
                         model_name="{{ 7*7 }}<b>")
    xaudit.render(result, tmp_path, formats=("html", "md", "junit"))
    page = (tmp_path / "report.html").read_text()
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags
    assert "img" not in parser.tags
    assert "<script>" not in page
    assert "<img" not in page
    text = "".join(parser.text)
    assert "<script>alert(1)</script>" in text  # shown as text, in tables and figures
    assert "{{ 7*7 }}" in text  # not expanded by the template engine
    assert "{% raw %}x" in text
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    summary = (tmp_path / "summary.md").read_text()
    assert not re.search(r"(?<!\\)<(img|script)", summary)  # Markdown-escaped as \\<
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("name") == "xaudit: <img src=x onerror=alert(2)>"


def test_crashed_explainer_is_reported_and_the_rest_renders(tmp_path: Path) -> None:
    page = render_html(make_result(["x1", "x2", "x3"], crashed=True), tmp_path)
    assert "could not be rendered" not in page
    assert "ZeroDivisionError: the explainer divided by zero" in page
    assert "This explainer crashed" in page
    assert "CRASHED" in page
    methods = page[page.index('id="sec-methods"'):page.index('id="sec-global"')]
    assert "boom" in methods
    assert "abl" in methods
    global_section = page[page.index('id="sec-global"'):page.index('id="sec-local"')]
    assert "<svg" in global_section  # the surviving explainer is still charted
    assert "Incomplete audit" in page


def test_every_section_says_why_it_is_empty(tmp_path: Path) -> None:
    result = make_result(["a", "b"], crashed=True)
    result.explanations.clear()
    result.checks.clear()
    page = render_html(result, tmp_path)
    assert "could not be rendered" not in page
    sections = re.findall(r'<section id="sec-([a-z-]+)"', page)
    assert len(sections) == len(SECTIONS)
    for name in ("global", "local", "media", "faithfulness", "stability", "glossary", "fairness"):
        body = page[page.index(f'id="sec-{name}"'):]
        body = body[:body.index("</section>")]
        assert "Not applicable: " in body, name
    regulatory = page[page.index('id="sec-regulatory"'):]
    assert "NOT SERVED" in regulatory


def test_120_features_show_top_k_and_aggregate_the_rest(tmp_path: Path) -> None:
    names = [f"feature_{i:03d}" for i in range(120)]
    result = make_result(names, n=12, report={"top_k": 10})
    page = render_html(result, tmp_path)
    explanation = result.explanations["abl"]
    scores = np.abs(explanation.values[..., 0]).mean(axis=0)
    order = np.argsort(-scores, kind="stable")
    ranked = rank_top(explanation.feature_names, mean_abs(explanation, 0)[0], None, 10)
    assert ranked.names == [names[i] for i in order[:10]]
    assert ranked.other_count == 110
    assert ranked.other_score == pytest.approx(scores[order[10:]].sum())
    global_section = page[page.index('id="sec-global"'):page.index('id="sec-local"')]
    assert "other 110 features (sum)" in global_section  # bar chart
    assert "other 110 features</td>" in global_section  # table
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td><td>(feature_\d+)</td>", global_section)
    assert [name for _, name in rows] == ranked.names
    share = 1 - scores[order[:10]].sum() / scores.sum()
    assert f"{100 * share:.1f}%" in global_section
    assert "other 110 features" in page[page.index('id="sec-data"'):]
    assert "other 110 features" in page[page.index('id="sec-local"'):]  # waterfalls


def test_principal_reasons_against_brute_force() -> None:
    names = ["income", "debt", "age", "tenure", "inquiries", "unused"]
    explanation, _ = linear_explanation(names, n=30, seed=4)
    explanation.values[:, 5, :] = 0.0  # a feature the model does not use
    codes = {"debt": "Debt too high", "inquiries": "Too many inquiries"}
    decision = DecisionSpec(output="score", adverse="below", threshold=0.0)
    used = np.array([True] * 5 + [False])
    for row in range(explanation.n_rows):
        reasons = principal_reasons(explanation, row, 0, decision, used, codes)
        phi = explanation.values[row, :, 0]
        expected = [names[i] for i in sorted(range(5), key=lambda i: phi[i]) if phi[i] < 0][:4]
        assert [r.feature for r in reasons] == expected
        for reason in reasons:
            assert reason.statement == codes.get(reason.feature,
                                                 f"{reason.feature} (no reason code documented)")


def test_documentation_drives_reasons_segments_and_signoff(tmp_path: Path) -> None:
    documentation = {
        "intended_use": "Rank applications.", "owner": "Risk team", "status": "approved",
        "prepared_by": {"name": "Ada", "role": "developer", "date": "2025-02-01"},
        "approved_by": {"name": "Grace", "role": "chief risk officer", "date": "2025-02-03"},
        "segments": ["b", {"feature": "a", "bins": [-5, 0, 5]}],
        "decision": {"output": "score", "adverse": "above", "threshold": 1.5},
        "reason_codes": {"a": "Reason A <applies>", "ghost": "never used"},
    }
    result = make_result(["a", "b", "c"], n=10, documentation=documentation)
    page = render_html(result, tmp_path)
    local = page[page.index('id="sec-local"'):page.index('id="sec-media"')]
    explanation = result.explanations["abl"]
    outputs = explanation.values[..., 0].sum(axis=1) + 1.5
    adverse = int((outputs > 1.5).sum())
    assert f"{adverse} of 10 explained subjects had an adverse decision" in local
    assert local.count('<td class="num">', local.index('class="reasons'),
                       local.index("</table>")) == 2 * adverse  # row and output per subject
    assert "Reason A &lt;applies&gt;" in local
    fairness = page[page.index('id="sec-fairness"'):page.index('id="sec-media"')]
    assert "Adverse outcomes by a" in fairness
    assert fairness.index("<td>[-5, 0)</td>") < fairness.index("<td>[0, 5]</td>")
    assert "ghost" in local  # a reason code for an unknown feature is pointed out
    signoff = page[page.index('id="sec-signoff"'):page.index('id="sec-regulatory"')]
    assert "Ada" in signoff
    assert "2025-02-01" in signoff
    assert "Grace" in signoff
    assert "approved" in page[:page.index('id="sec-cover"') + 2000]


def test_documentation_block_is_validated() -> None:
    suite = {"name": "s", "model": {"factory": "m:f"}, "data": {"source": "sklearn:diabetes"},
             "explainers": [{"id": "a", "method": "ablation"}],
             "documentation": {"reson_codes": {}}}
    with pytest.raises(xaudit.SuiteError, match=r"documentation\.reson_codes"):
        parse_suite(suite)


@pytest.mark.parametrize(("approver", "missing"), [
    (None, "the approved_by entry"),
    ({"name": "Grace"}, "role, date"),
    ({"name": "Grace", "role": "chief risk officer"}, "date"),
    ({"name": " ", "role": "chief risk officer", "date": "2025-02-03"}, "name"),
])
def test_approval_needs_name_role_and_date(approver: dict[str, str] | None,
                                           missing: str) -> None:
    documentation: dict[str, Any] = {"status": "approved"}
    if approver is not None:
        documentation["approved_by"] = approver
    suite = {"name": "s", "model": {"factory": "m:f"}, "data": {"source": "sklearn:diabetes"},
             "explainers": [{"id": "a", "method": "ablation"}], "documentation": documentation}
    with pytest.raises(xaudit.SuiteError, match=r"documentation\.approved_by: .*approved needs"
                                                 rf".*missing: {missing}$"):
        parse_suite(suite)
    documentation["status"] = "draft"  # a draft may name an incomplete approver
    parse_suite(suite)


def test_unsigned_approval_exits_4_naming_the_field(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\nmodel: {factory: 'm:f'}\ndata: {source: 'sklearn:diabetes'}\n"
                     "explainers: [{id: a, method: ablation}]\n"
                     "documentation: {status: approved, approved_by: {name: Grace}}\n")
    assert main(["validate", "--no-dependency-check", str(suite)]) == 4
    assert "documentation.approved_by" in capsys.readouterr().err


def test_user_template_extends_the_builtin_one(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "section_model.html.j2").write_text(
        '{% extends "builtin:section_model.html.j2" %}'
        '{% block body %}<p class="custom">House note on {{ ctx.model.name }}.</p>'
        "{{ super() }}{% endblock %}")
    page = render_html(make_result(["a", "b"]), tmp_path / "out", template_dir=folder)
    model = page[page.index('id="sec-model"'):page.index('id="sec-data"')]
    assert '<p class="custom">House note on linear.</p>' in model
    assert "callable" in model  # the built-in body is still there


class _Broken(ReportSection):
    name = "probe.broken"
    title = "Broken plugin section"
    template = "never.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        raise RuntimeError("plugin bug")


class _BrokenPlugin:
    __name__ = "broken_report_plugin"

    @hookimpl
    def xaudit_register_report_sections(self, registry: Any) -> None:
        registry.add(_Broken)


def test_a_crashing_plugin_section_does_not_stop_the_report(tmp_path: Path) -> None:
    host = create_host(plugins=[_BrokenPlugin()], autoload=False)
    page = render_html(make_result(["a", "b"]), tmp_path, host=host)
    assert "Broken plugin section" in page
    assert "RuntimeError: plugin bug" in page
    assert page.count('<section id="sec-') == len(SECTIONS) + 1


def test_image_and_text_explanations_render(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 3
    image = Explanation(
        method="probe.saliency", values=rng.normal(size=(n, 1, 8, 8, 1)), base_values=None,
        feature_names=(), output_names=("cat",), target_indices=np.zeros((n, 1), dtype=int),
        inputs=rng.random(size=(n, 1, 8, 8)))
    tokens = [["the", "<b>film</b>", "was", "great"]] * n
    text = Explanation(
        method="probe.tokens", values=rng.normal(size=(n, 4, 1)), base_values=None,
        feature_names=(), output_names=("positive",),
        target_indices=np.zeros((n, 1), dtype=int), inputs=np.zeros((n, 4)),
        handoff=Handoff(tokens=tuple(map(tuple, tokens))))
    result = make_result(["a", "b"], extra={"img": image, "txt": text})
    page = render_html(result, tmp_path)
    media = page[page.index('id="sec-media"'):page.index('id="sec-faithfulness"')]
    assert media.count("<svg") == 3
    assert "<image" in media
    assert 'href="data:image/png;base64,' in media
    assert media.count('class="token"') == 4 * 3
    assert "&lt;b&gt;film&lt;/b&gt;" in media
    assert "<b>film" not in media


def test_cli_report_rerenders_default_formats(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("weasyprint")
    saved = tmp_path / "run"
    make_result(["a", "b"], n=4).save(saved)
    assert main(["report", str(saved), "--pdf-variant", "plain"]) == 0
    written = {Path(p).name for p in capsys.readouterr().out.split()}
    assert written == {"report.html", "report.pdf", "summary.md", "junit.xml", "manifest.json"}
    assert main(["report", str(saved), "--template-dir", str(tmp_path / "missing")]) == 4


def test_curves_and_counterfactuals_are_not_ranked_as_attributions(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    n = 4
    base, _ = linear_explanation(names, n)
    found = np.repeat(base.inputs[:, None, :], 2, axis=1)  # unused slots repeat the row
    found[0, 0, 1] = 9.5  # row 0: one counterfactual changing b; the other slot left empty
    valid = np.zeros((n, 2), dtype=bool)
    valid[0, 0] = True
    distances = np.where(valid, 1.25, np.nan)
    reasons = ((ChangeReason("<b>", 0.5, 9.5, -2.25),),) + ((),) * (n - 1)
    counterfactual = Explanation(
        method="counterfactual", values=found[:, 0, :, None] - base.inputs[..., None],
        base_values=None, feature_names=tuple(names), output_names=("score",),
        target_indices=np.zeros((n, 1), dtype=int), inputs=base.inputs,
        metadata={"searches": [{"row": i, "log": "x" * 400} for i in range(n)]},
        handoff=Handoff(kind="change", counterfactuals=Counterfactuals(
            found, valid, distances, np.zeros((n, 2, 1)), reasons)))
    grid = np.linspace(-1, 1, 5)[None].repeat(3, axis=0)
    pdp = Explanation(
        method="pdp", values=np.zeros((n, 3, 1)), base_values=None, feature_names=tuple(names),
        output_names=("score",), target_indices=np.zeros((n, 1), dtype=int),
        inputs=base.inputs, handoff=Handoff(kind="effect", partial_dependence=PartialDependence(
            grid, grid[..., None] * 2, (0, 1, 2))))
    page = render_html(make_result(names, n=n, extra={"cf": counterfactual, "pdp": pdp}),
                       tmp_path)
    glob = page[page.index('id="sec-global"'):page.index('id="sec-local"')]
    local = page[page.index('id="sec-local"'):page.index('id="sec-media"')]
    assert "cf (counterfactual)" not in glob  # no "mean |attribution|" ranking of changes
    assert glob.count("pdp (pdp)") == 1  # the curves, not an attribution ranking
    block = local[local.index("cf (counterfactual)"):]
    assert "1 of 4 explained rows" in block
    assert "<caption>Counterfactual" not in block  # the tables are in the appendix
    appendix = page[page.index('id="sec-details"'):page.index('id="sec-reproducibility"')]
    block = appendix[appendix.index('id="counterfactuals-cf"'):]
    assert block.count("<tr><td class=\"num\">") == 1  # one row has a counterfactual
    assert "(1.25)" in block  # its distance
    assert "9.5" in block
    assert "principal reasons" in block
    assert "&lt;b&gt;" in block  # a feature name from the data, escaped
    assert "−2.25" in block or "-2.25" in block
    assert "pdp (pdp)" not in local
    assert "x" * 400 not in page
    assert "in results.json only" in appendix


def test_explainers_caveats_reach_the_limitations(tmp_path: Path) -> None:
    names = ["a", "b"]
    attention, _ = linear_explanation(names, method="attention.rollout")
    attention = dataclasses.replace(attention, handoff=Handoff(
        caveats=("Attention weights are not <i>attributions</i>.",)))
    deep, _ = linear_explanation(names, method="deeplift")
    deep = dataclasses.replace(deep, handoff=Handoff(inexact_ops=("softmax",)))
    page = render_html(make_result(names, extra={"att": attention, "dl": deep}), tmp_path)
    limits = page[page.index('id="sec-limitations"'):page.index('id="sec-reproducibility"')]
    assert "Attention weights are not &lt;i&gt;attributions&lt;/i&gt;." in limits
    assert "dl (deeplift) passed through operations" in limits
    assert "softmax" in limits


def test_image_maps_name_each_rows_predicted_class(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 2
    image = Explanation(
        method="probe.saliency", values=rng.normal(size=(n, 1, 4, 4, 1)), base_values=None,
        feature_names=(), output_names=("predicted",),
        target_indices=np.array([[2], [0]]), inputs=rng.random(size=(n, 1, 4, 4)))
    result = make_result(["a", "b"], extra={"img": image})
    result.model["output_names"] = ["cat", "dog", "<owl>"]
    media = render_html(result, tmp_path)
    media = media[media.index('id="sec-media"'):media.index('id="sec-faithfulness"')]
    assert "predicted &lt;owl&gt;" in media
    assert "predicted cat" in media


def test_partial_dependence_draws_chosen_curves_and_two_way_surfaces(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    n = 4
    base, _ = linear_explanation(names, n)
    grid = np.linspace(-1, 1, 5)[None].repeat(3, axis=0)
    pdp_values = np.zeros((3, 5, 1))
    pdp_values[0, :, 0], pdp_values[2, :, 0] = grid[0], -grid[0]  # b was not computed
    pair_grid = np.full((1, 2, 4), np.nan)
    pair_grid[0, 0, :3], pair_grid[0, 1, :4] = [0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0]
    surface = np.full((1, 4, 4, 1), np.nan)
    surface[0, :3, :4, 0] = np.arange(12.0).reshape(3, 4)
    pdp = Explanation(
        method="pdp", values=np.zeros((n, 3, 1)), base_values=None, feature_names=tuple(names),
        output_names=("score",), target_indices=np.zeros((n, 1), dtype=int),
        inputs=base.inputs, handoff=Handoff(kind="effect", partial_dependence=PartialDependence(
            grid, pdp_values, (0, 2), pairs=PairDependence(((0, 2),), pair_grid, surface))))
    page = render_html(make_result(names, n=n, extra={"pdp": pdp}), tmp_path)
    glob = page[page.index('id="sec-global"'):page.index('id="sec-local"')]
    block = glob[glob.index("pdp (pdp)"):]
    assert block.count("Partial dependence (green)") == 2  # a and c, not the flat b
    assert block.count("Two-way partial dependence") == 1
