"""What a notebook shows: ``_repr_html_`` of explanations, check and audit results, and
``xaudit.render`` of a single explanation or check.

Oracles: numpy (the mean |attribution| shown, and the order of the features), the checks'
declared descriptions read from the host, the HTML parser of the standard library (no tag or
script from a feature name survives), and the files ``render`` writes (loaded back).
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import xaudit
from xaudit.explanation import Explanation
from xaudit.results import AuditResult
from xaudit.suite import GateSpec

HOSTILE = '<script>alert("x")</script>&<b>'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def linear() -> tuple[LinearRegression, np.ndarray, Explanation]:
    r = np.random.default_rng(0)
    X = r.normal(size=(60, 12))
    model = LinearRegression().fit(X, X @ np.arange(12.0) + r.normal(size=60))
    exp = xaudit.explain(model, X[:20], method="ablation", background=X[20:],
                         feature_names=[f"f{i}" for i in range(11)] + [HOSTILE])
    return model, X, exp


def test_explanation_shows_the_top_features_by_mean_absolute_attribution(
        linear: tuple[LinearRegression, np.ndarray, Explanation]) -> None:
    _, _, exp = linear
    html = exp._repr_html_()
    importance = np.abs(exp.values[..., 0]).mean(axis=0)
    order = np.argsort(-importance)
    names = list(exp.feature_names)
    cells = re.findall(r'<td style="padding-right: 12px"><code>(.*?)</code></td>', html)
    assert [unescape(cell) for cell in cells] == [names[i] for i in order[:10]]
    assert f"{importance[order[0]]:.4g}" in html
    assert "and 2 more features" in html
    assert "method <code>ablation</code>" in html
    assert "seed 0" in html
    assert "20 × 12 × 1" in html
    bars = [float(w) for w in re.findall(r'<rect x="0" y="0" width="([0-9.]+)"', html)]
    np.testing.assert_allclose(bars, 180 * importance[order[:10]] / importance[order[0]],
                               atol=0.06)


def test_nothing_from_data_becomes_markup(
        linear: tuple[LinearRegression, np.ndarray, Explanation]) -> None:
    model, _, exp = linear
    result = xaudit.check("completeness", model, exp, gate=GateSpec(threshold=1e-6),
                          label=HOSTILE)
    audit = AuditResult(HOSTILE, {}, {}, {}, explanations={"e": exp}, checks=[result],
                        files=[Path(f"out/{HOSTILE}.html")])
    for html in (exp._repr_html_(), result._repr_html_(), audit._repr_html_()):
        parsed = _parse(html)
        assert "script" not in parsed.tags
        assert "b" not in parsed.tags
        assert any(HOSTILE in text for text in parsed.text)


def test_check_result_shows_value_gate_verdict_and_what_it_means(
        linear: tuple[LinearRegression, np.ndarray, Explanation]) -> None:
    model, _, exp = linear
    passed = xaudit.check("completeness", model, exp, gate=GateSpec(threshold=1e-6))
    html = passed._repr_html_()
    assert "PASS" in html
    assert "≤ 1e-06" in html
    assert f"{passed.value:.6g}" in html
    description = xaudit.create_host(autoload=False).checks.get("completeness").description
    assert description
    assert "".join(_parse(html).text).count(description[:60]) == 1
    loose = xaudit.check("completeness", model, exp)
    assert "NOT GATED" in loose._repr_html_()
    assert "not gated" in loose._repr_html_()


def test_audit_result_lists_checks_and_links_written_files(tmp_path: Path) -> None:
    r = np.random.default_rng(1)
    X = r.normal(size=(80, 4))
    audit = xaudit.run_suite({
        "name": "display", "model": {"object": LinearRegression().fit(X, X.sum(1))},
        "data": {"X": X, "y": X.sum(1), "explain": {"n": 5}},
        "explainers": [{"id": "abl", "method": "ablation"}],
        "checks": [{"check": "completeness", "explainer": "abl", "gate": {"threshold": 1e-6}},
                   {"check": "completeness", "explainer": "abl", "id": "loose"}],
        "report": {"formats": ["json", "md"]}}, out_dir=tmp_path)
    html = audit._repr_html_()
    assert audit.files == [tmp_path / name for name in ("results.json", "arrays.npz",
                                                         "summary.md", "manifest.json")]
    assert f'href="{tmp_path / "summary.md"}"' in html
    assert "verdict <strong>OK</strong> (exit 0)" in html
    assert "1 passed, 0 failed, 0 warned, 1 not gated, 0 crashed" in html
    assert html.count("<tr>") == 3  # header + two checks
    # render replaces the folder as a unit: the files it lists are exactly those now there
    written = xaudit.render(audit, tmp_path, formats=("json", "html"))
    assert audit.files == written
    assert sorted(tmp_path.iterdir()) == sorted(written)
    assert "summary.md" not in audit._repr_html_()


def test_render_writes_a_report_of_one_explanation(
        linear: tuple[LinearRegression, np.ndarray, Explanation], tmp_path: Path) -> None:
    model, _, exp = linear
    written = xaudit.render(exp, tmp_path, formats=("json", "html", "md"), model=model)
    assert [p.name for p in written] == ["results.json", "arrays.npz", "report.html",
                                        "summary.md", "manifest.json"]
    back = AuditResult.load(tmp_path)
    np.testing.assert_array_equal(back.explanations["explanation"].values, exp.values)
    assert back.model["sha256"] == xaudit.adapt(model).fingerprint()
    page = (tmp_path / "report.html").read_text()
    for title in ("Global explanations", "Local explanations", "Methods"):
        assert title in page
    assert 'class="error"' not in page  # no section crashed
    assert "<script>alert" not in page


def test_render_writes_a_report_of_one_check(
        linear: tuple[LinearRegression, np.ndarray, Explanation], tmp_path: Path) -> None:
    model, _, exp = linear
    result = xaudit.check("completeness", model, exp, gate=GateSpec(threshold=1e-6))
    xaudit.render(result, tmp_path, formats=("json", "html"), explanation=exp)
    back = AuditResult.load(tmp_path)
    assert [c.status for c in back.checks] == ["pass"]
    assert back.exit_code() == 0
    assert 'class="error"' not in (tmp_path / "report.html").read_text()
