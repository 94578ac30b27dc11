"""Hostile text in every field a suite, a data file, a model or a plugin can set leaves every
output well-formed, with control and bidirectional characters shown as visible escapes.

The hostile string holds NUL and other C0 controls, an ANSI colour sequence, DEL, a C1 control,
the right-to-left override and isolates, a line separator and an unpaired surrogate. It is put
in the suite's name and description, a check id, the data's feature names, the model's name and
output names, the documentation block, and the messages of a crashing explainer and check. The
oracles: ``xml.etree`` parses junit.xml and ``xmlschema`` validates it against the JUnit schema;
no output (junit.xml, summary.md, report.html, stdout, stderr) holds any character of
:mod:`xaudit.safe_text`'s unsafe set; the escapes are there for a reader to see.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from xaudit.cli import main
from xaudit.reports import figures
from xaudit.safe_text import one_line, printable

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "h\x00\x01\x08\x0b\x0c\x1b[31mred\x1b[0m\x7f\x85\u202eevil\u2066x\u2069\u2028!"
SURROGATE = HOSTILE + "\ud800"
"""YAML cannot carry an unpaired surrogate (libyaml refuses the escape); exception messages and
NPZ feature names can."""
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029"
                    "\u2066-\u2069\ud800-\udfff\ufffe\uffff]")

MODELS = '''\
import numpy as np

WEIGHTS = np.array([1.0, -2.0, 0.5, 0.25])


def linear(data):
    return lambda X: np.asarray(X, dtype=float) @ WEIGHTS
'''

PLUGIN = f'''\
from xaudit import Check, Explainer, hookimpl

MESSAGE = {SURROGATE!r}


class Crash(Explainer):
    name = "test.hostile_crash"

    def explain(self, model, X, *, background, targets, rng):
        raise RuntimeError(MESSAGE)


class CrashCheck(Check):
    name = "test.hostile_check"
    direction = "lower"

    def run(self, model, explanation, data, rng):
        raise ValueError(MESSAGE)


@hookimpl
def xaudit_register_explainers(registry):
    registry.add(Crash)


@hookimpl
def xaudit_register_checks(registry):
    registry.add(CrashCheck)
'''


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str, Path]]:
    """A suite with the hostile string everywhere; its folder, the plugin module, the out dir."""
    tag = uuid.uuid4().hex
    models, plugin = f"xaudit_hostile_models_{tag}", f"xaudit_hostile_plugin_{tag}"
    (tmp_path / f"{models}.py").write_text(MODELS)
    (tmp_path / f"{plugin}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    names = np.array([f"{HOSTILE}{i}" for i in range(3)] + [SURROGATE])
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", X=rng.normal(size=(40, 4)), y=rng.normal(size=40),
             feature_names=names)
    person = {"name": HOSTILE, "role": HOSTILE}
    document = {
        "name": HOSTILE, "description": HOSTILE, "seed": 1,
        "model": {"factory": f"{models}:linear", "output_names": [HOSTILE],
                  "options": {"name": HOSTILE}},
        "data": {"source": "data.npz", "explain": {"n": 4}, "background": {"n": 8}},
        "explainers": [{"id": "abl", "method": "ablation"},
                       {"id": "crash", "method": "test.hostile_crash"}],
        "checks": [{"check": "completeness", "explainer": "abl", "id": HOSTILE,
                    "gate": {"threshold": 1e-6}},
                   {"check": "test.hostile_check", "explainer": "abl", "id": "hostile-check"},
                   {"check": "completeness", "explainer": "crash", "id": "after-crash"}],
        "report": {"formats": ["json", "md", "junit", "html"]},
        "documentation": {
            "intended_use": HOSTILE, "out_of_scope": [HOSTILE], "owner": HOSTILE,
            "contact": HOSTILE, "inventory_id": HOSTILE, "risk_tier": HOSTILE,
            "prepared_by": person, "reviewed_by": person, "approved_by": person,
            "segments": [f"{HOSTILE}0"], "decision": {"output": HOSTILE, "threshold": 0.0},
            "reason_codes": {f"{HOSTILE}{i}": HOSTILE for i in range(3)}},
    }
    (tmp_path / "suite.yaml").write_text(json.dumps(document))  # JSON is YAML; \\u escapes
    yield tmp_path, plugin, tmp_path / "out"
    sys.modules.pop(models, None)
    sys.modules.pop(plugin, None)


def test_hostile_text_in_every_field_keeps_every_output_well_formed(
        audit: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    folder, plugin, out = audit
    assert main(["-p", plugin, "run", str(folder / "suite.yaml"), "--out", str(out)]) == 3
    captured = capsys.readouterr()
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    summary = (out / "summary.md").read_text(encoding="utf-8")
    html = (out / "report.html").read_text(encoding="utf-8")
    for name, text in [("junit.xml", junit), ("summary.md", summary), ("report.html", html),
                       ("stdout", captured.out), ("stderr", captured.err)]:
        found = sorted({f"U+{ord(c):04X}" for c in UNSAFE.findall(text)})
        assert not found, f"{name} holds {found}"
    visible = printable(HOSTILE)
    assert visible.startswith("h\\x00\\x01\\x08\\x0b\\x0c\\x1b[31mred\\x1b[0m\\x7f\\x85\\u202eevil")
    # JUnit: parses, validates, and carries each hostile field as its visible escape
    root = ET.fromstring(junit.encode("utf-8"))
    xmlschema = pytest.importorskip("xmlschema")
    xmlschema.XMLSchema(str(ROOT / "tests" / "data" / "junit.xsd")).validate(junit)
    suite_name = root.find("testsuite").get("name")
    assert suite_name == f"xaudit: {visible}"
    assert {c.get("name") for c in root.iter("testcase")} >= {visible, "crash"}
    messages = [e.get("message") for e in root.iter("error")]
    assert any(m.endswith(printable(SURROGATE)) for m in messages)
    # Markdown: the title, read as CommonMark reads backslash escapes, is the visible text
    title = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", summary.splitlines()[0])
    assert title.startswith(f"# xaudit: {one_line(HOSTILE)}: ")
    # HTML: parses; the escapes are in the text (as data, not markup)
    HTMLParser().feed(html)
    assert visible in html
    # console: one line per check, the verdict line is the last and cannot be forged
    verdicts = captured.out.strip().splitlines()
    assert verdicts[-2].startswith(f"{one_line(HOSTILE)}: CRASHED (exit 3)")


@pytest.mark.parametrize("name", ["cost ($)", r"$\frac{$", "$x$ and $y$", "100$"])
def test_dollar_signs_in_names_are_text_not_tex(name: str) -> None:
    """Each figure kind with the name as a label: it renders, and the SVG's text is the name."""
    values = np.array([[0.5, -1.0], [1.5, 0.25]])
    svgs = [
        figures.bar_chart([name, "b"], values[0], None, f"mean |attribution| ({name})"),
        figures.beeswarm([name, "b"], values, values, name),
        figures.scatter(values[:, 0], values[:, 1], name, name),
        figures.waterfall(1.0, [name, "b"], values[0], name, name),
        figures.lines(np.arange(2.0), [values[0], values[1]], [name, "b"], name, name),
        figures.histogram(values[:, 0], name, 0.5),
    ]
    for svg in svgs:
        root = ET.fromstring(str(svg).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ',
                                              1))
        texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
        assert any(name in text for text in texts), texts


def test_a_section_that_fails_to_render_is_logged(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from reports_support import make_result

    import xaudit

    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "section_data.html.j2").write_text("{{ ctx.no_such_key.deeper }}")
    out = tmp_path / "out"
    xaudit.render(make_result(["a", "b"]), out, formats=("html",), template_dir=folder)
    page = (out / "report.html").read_text()
    assert "UndefinedError" in page[page.index('id="sec-data"'):]
    (record,) = [r for r in caplog.records if "failed to render" in r.message]
    assert record.levelname == "WARNING"
    assert "UndefinedError" in record.message


def test_xaudit_diff_shows_received_names_escaped_and_on_their_own_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both folders of ``xaudit diff`` are received data: hostile suite and feature names reach
    the console escaped, one line each, and comparison.json as JSON escapes."""
    from reports_support import make_result

    forged = "a\nxaudit diff: forged line"
    name = HOSTILE + forged
    make_result([f"{HOSTILE}f", "b"], suite_name=name).save(tmp_path / "approved")
    make_result([f"{HOSTILE}f", "b", forged], suite_name=name).save(tmp_path / "candidate")
    out = tmp_path / "comparison"
    assert main(["diff", str(tmp_path / "approved"), str(tmp_path / "candidate"), "--out",
                 str(out), "--allow-feature-changes"]) == 0
    captured = capsys.readouterr()
    found = sorted({f"U+{ord(c):04X}" for c in UNSAFE.findall(captured.out + captured.err)})
    assert not found, f"the console holds {found}"
    lines = captured.out.splitlines()
    assert lines[0] == f"xaudit diff: {one_line(name)}"
    assert not any(line.startswith("xaudit diff: forged") for line in lines)
    assert any(f"features new: {one_line(forged)}" in line for line in lines)
    text = (out / "comparison.json").read_text(encoding="utf-8")
    assert not UNSAFE.findall(text)
    assert json.loads(text)["candidate"]["suite_name"] == name  # the data itself is kept
