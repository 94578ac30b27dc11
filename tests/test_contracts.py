"""What plugins hand back is checked where they hand it back (issue 18).

A check's outcome (a finite-or-NaN value, one value per explained row, JSON-ready details, the
explanation left untouched) and an explainer's attribution (its shape, JSON-ready metadata,
storable extras) are refused by the engine with a message naming the field; in a suite that
plugin's entry crashes and every other result is still written. A report section that fails is
listed on stderr and makes ``xaudit report`` exit 3. The oracles are hand-computed: which field
is wrong, what shape was expected.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xaudit
from xaudit import PluginError
from xaudit.contracts import json_problems
from xaudit.host import AUTOLOAD_ENV, BLOCK_ENV
from xaudit.testing import linear_fixture

PLUGIN = "xaudit_contract_plugins"
BODY = '''
import numpy as np
from xaudit import Attribution, Check, CheckOutcome, Explainer, ReportSection, hookimpl


class _Check(Check):
    direction = "lower"


class NotJson(_Check):
    name = "bad.details"

    def run(self, model, explanation, data, rng):
        return CheckOutcome(1.0, details={"fine": [1, 2], "seen": {"a", "b"}})


class ShortValues(_Check):
    name = "bad.values"

    def run(self, model, explanation, data, rng):
        return CheckOutcome(1.0, values=np.zeros(3))


class Infinite(_Check):
    name = "bad.value"

    def run(self, model, explanation, data, rng):
        return CheckOutcome(float("inf"))


class Undefined(_Check):
    name = "fine.nan"

    def run(self, model, explanation, data, rng):
        return CheckOutcome(float("nan"), values=np.full(explanation.n_rows, np.nan))


class Mutates(_Check):
    name = "bad.mutates"

    def run(self, model, explanation, data, rng):
        explanation.values[...] = 0.0
        return CheckOutcome(0.0)


class _Explainer(Explainer):
    def explain(self, model, X, *, background, targets, rng):
        values = np.ones((X.shape[0], X.shape[1], targets.n_slots))
        return Attribution(values=values, **self.extra(values))


class Transposed(_Explainer):
    name = "bad.transposed"

    def explain(self, model, X, *, background, targets, rng):
        return Attribution(values=np.ones((X.shape[0], targets.n_slots, X.shape[1])))


class Metadata(_Explainer):
    name = "bad.metadata"

    def extra(self, values):
        return {"metadata": {"steps": 3, "model": object()}}


class Extras(_Explainer):
    name = "bad.extras"

    def extra(self, values):
        return {"extras": {"labels": np.array([None, "a"], dtype=object)}}


class BrokenSection(ReportSection):
    name = "bad.section"
    title = "Broken section"
    template = "section_data.html.j2"

    def context(self, result):
        return {"ratio": 1 / 0}


@hookimpl
def xaudit_register_checks(registry):
    for cls in (NotJson, ShortValues, Infinite, Undefined, Mutates):
        registry.add(cls)


@hookimpl
def xaudit_register_explainers(registry):
    for cls in (Transposed, Metadata, Extras):
        registry.add(cls)
'''
SECTION = '''

@hookimpl
def xaudit_register_report_sections(registry):
    registry.add(BrokenSection)
'''

SUITE = """\
name: contracts
model: {factory: "model:make", output_names: [y]}
data: {source: data.npz, split: {test_size: 0.25}, explain: {n: 10}, background: {n: 20}}
explainers:
  - {id: abl, method: ablation}
  - {id: meta, method: bad.metadata}
  - {id: extras, method: bad.extras}
checks:
  - {check: completeness, explainer: abl, gate: {threshold: 1.0e-9}}
  - {check: bad.details, explainer: abl}
  - {check: bad.values, explainer: abl}
  - {check: bad.value, explainer: abl}
  - {check: fine.nan, explainer: abl}
  - {check: bad.mutates, explainer: abl}
report: {formats: [json, md, junit], out_dir: out}
"""


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv(BLOCK_ENV, raising=False)


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A suite on a linear model (40 rows, 10 explained) and the plugin module of bad ones."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    np.savez(tmp_path / "data.npz", X=X)
    (tmp_path / "model.py").write_text(textwrap.dedent("""\
        def make():
            return lambda X: X @ [2.0, -1.0, 0.5]
        """))
    (tmp_path / f"{PLUGIN}.py").write_text(BODY + SECTION)
    (tmp_path / "suite.yaml").write_text(SUITE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / "suite.yaml"
    for module in (PLUGIN, "model"):
        sys.modules.pop(module, None)


def test_bad_outcomes_crash_their_check_and_everything_else_is_written(
    suite: Path, xaudit_cli: Any,
) -> None:
    done = xaudit_cli("--no-autoload", "-p", PLUGIN, "run", suite, "-q")
    assert done.exit_code == 3, done.stdout + done.stderr
    out = suite.parent / "out"
    result = xaudit.AuditResult.load(out)
    checks = {c.check: c for c in result.checks}
    assert checks["completeness"].status == "pass"  # the others are all there
    assert np.isnan(checks["fine.nan"].value)  # NaN: undefined, allowed (and fails no gate)
    assert checks["fine.nan"].status == "not_gated"
    messages = {name: str(c.error) for name, c in checks.items() if c.error is not None}
    assert set(messages) == {"bad.details", "bad.values", "bad.value", "bad.mutates"}
    assert ("details['seen'] is a builtins.set, which results.json cannot store"
            in messages["bad.details"])
    assert "details['fine']" not in messages["bad.details"]
    assert ("values: expected one number per explained row, shape (10,), got float64 shaped "
            "(3,)" in messages["bad.values"])
    assert "value is inf; expected a finite float, or NaN" in messages["bad.value"]
    assert "the check changed the explanation it measures" in messages["bad.mutates"]
    for message in messages.values():
        assert f"plugin '{PLUGIN}' (distribution local) returned an outcome" in message
    # the crashed explainers are named with their field; the good one is saved
    assert set(result.explanations) == {"abl"}
    assert "metadata['model'] is a builtins.object" in str(result.explainer_errors["meta"])
    assert "extras['labels'] is an array of dtype object" in str(
        result.explainer_errors["extras"])
    # the mutating check did not change what was saved
    assert np.abs(result.explanations["abl"].values).sum() > 0
    assert json.loads((out / "results.json").read_text())["exit_code"] == 3


def test_a_wrong_shape_prints_expected_and_actual(suite: Path) -> None:
    host = xaudit.create_host(plugins=[PLUGIN], autoload=False)
    function, X, background = linear_fixture()
    with pytest.raises(PluginError) as refused:
        xaudit.explain(function, X, "bad.transposed", background=background, host=host)
    assert "values: expected (6, 4, 2), got (6, 2, 4)" in str(refused.value)
    assert "bad.transposed" in str(refused.value)


def test_a_failed_section_makes_report_exit_3(suite: Path, xaudit_cli: Any) -> None:
    assert xaudit_cli("--no-autoload", "run", suite, "-q").exit_code in (3, 4)  # written
    (suite.parent / "suite.yaml").write_text(SUITE.replace("  - {check: bad", "  # "))
    assert xaudit_cli("--no-autoload", "-p", PLUGIN, "run", suite, "-q").exit_code == 3
    out = suite.parent / "out"
    done = xaudit_cli("--no-autoload", "-p", PLUGIN, "report", out, "--formats", "html")
    assert done.exit_code == 3
    assert (f"xaudit: report section 'bad.section' (plugin '{PLUGIN}' (distribution local)): "
            "ZeroDivisionError: division by zero") in done.stderr
    assert "Broken section" in (out / "report.html").read_text()  # shown, with its error
    assert xaudit_cli("--no-autoload", "report", out, "--formats", "html").exit_code == 0


@pytest.mark.parametrize(("value", "problems"), [
    ({"a": [1, 2.5, None, "x", True], "b": np.arange(3), "c": np.float32(1)}, []),
    ({"a": {1, 2}}, ["d['a'] is a builtins.set"]),
    ({1: "x"}, ["d has the key 1 (int)"]),
    ({"a": [np.array([None], dtype=object)]}, ["d['a'][0] is a numpy ndarray of dtype object"]),
    ({"p": Path("x"), "nan": float("nan")}, []),
])
def test_json_problems_name_each_path(value: Any, problems: list[str]) -> None:
    found = json_problems(value, "d")
    assert len(found) == len(problems)
    for message, expected in zip(found, problems, strict=True):
        assert message.startswith(expected)
