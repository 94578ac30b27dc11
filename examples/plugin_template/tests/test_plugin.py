"""Tests of xaudit-plugin-example: xaudit's conformance kits, then the numbers against closed forms.

The kits check the contracts (shapes, seeds, JSON-ready outputs, escaping, ...); the numbers
need oracles of their own: a closed form, a hand computation or a reference library, never the
code's own earlier output. The fixtures (``xaudit_host``, ``xaudit_tabular``,
``fake_distribution``, ``xaudit_cli``) come from xaudit's pytest plugin.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xaudit
from xaudit.testing import (
    linear_fixture,
    parametrize_check_checks,
    parametrize_explainer_checks,
    parametrize_section_checks,
    sample_result,
)

from xaudit_plugin_example import GradientFreeSensitivity, Sparsity, SparsitySection, gini_index

EXPLAINER = GradientFreeSensitivity.name
CHECK = Sparsity.name


def audit_with_sparsity() -> xaudit.AuditResult:
    """The kit's sample audit plus a sparsity check: the data the section needs."""
    result = sample_result()
    function, _, _ = linear_fixture()  # the sample audit's model
    host = xaudit.create_host(plugins=["xaudit_plugin_example"], autoload=False)
    result.checks.append(xaudit.check(CHECK, function, result.explanations["ablation"],
                                      host=host, label="sparsity@ablation"))
    return result


@pytest.mark.parametrize("case", parametrize_explainer_checks(GradientFreeSensitivity))
def test_explainer_conforms(case: Any) -> None:
    case()


@pytest.mark.parametrize("case", parametrize_check_checks(Sparsity))
def test_check_conforms(case: Any) -> None:
    case()


@pytest.mark.parametrize("case", parametrize_section_checks(SparsitySection,
                                                            result=audit_with_sparsity))
def test_section_conforms(case: Any) -> None:
    case()


def test_slopes_of_a_linear_model_are_its_weights(xaudit_host: xaudit.Host,
                                                  xaudit_tabular: Any) -> None:
    # central differences of f(x) = x W + b are W exactly, whatever the step
    model, X, background = xaudit_tabular.model, xaudit_tabular.X, xaudit_tabular.background
    explanation = xaudit.explain(model, X, EXPLAINER, background=background, host=xaudit_host)
    weights = np.stack([model.predict(np.eye(4))[:, j] - model.predict(np.zeros((1, 4)))[0, j]
                        for j in range(2)], axis=-1)  # (4 features, 2 outputs)
    np.testing.assert_allclose(explanation.values, np.broadcast_to(weights, (len(X), 4, 2)),
                               atol=1e-7)


def test_slopes_of_a_cubic_are_3x2_plus_h2(xaudit_host: xaudit.Host) -> None:
    # ((x+h)^3 - (x-h)^3) / 2h = 3x^2 + h^2, with h = relative_step * std(background)
    rng = np.random.default_rng(0)
    X, background = rng.normal(size=(5, 3)), rng.normal(size=(40, 3))
    explanation = xaudit.explain(lambda rows: (rows**3).sum(axis=1), X, EXPLAINER,
                                 background=background, host=xaudit_host, relative_step=0.1)
    h = 0.1 * background.std(axis=0)
    np.testing.assert_allclose(explanation.values[..., 0], 3 * X**2 + h**2, atol=1e-9)


def test_gini_by_hand() -> None:
    # |(-3, 1, 2)| sorted (1, 2, 3), weights 2k - d - 1 = (-2, 0, 2): (-2 + 6) / (3 * 6) = 2/9
    assert gini_index(np.abs([-3.0, 1.0, 2.0])) == pytest.approx(2 / 9)
    assert gini_index(np.array([0.0, 0.0, 4.0])) == pytest.approx(2 / 3)  # 1 - 1/d
    assert gini_index(np.ones(5)) == pytest.approx(0.0)


def test_entry_point_is_discovered(fake_distribution: Any) -> None:
    fake_distribution("xaudit-plugin-example", "0.1.0", {"example": "xaudit_plugin_example"})
    host = xaudit.create_host()
    assert host.plugins["example"].distribution == "xaudit-plugin-example"
    assert host.explainers.origin(EXPLAINER).name == "example"
    assert host.checks.origin(CHECK).name == "example"


SUITE = """\
name: example-sparsity
model: {factory: "model:make", output_names: [y]}
data: {source: data.npz, explain: {n: 6}, background: {n: 20}}
explainers:
  - {id: fd, method: example.gradient_free_sensitivity}
checks:
  - {check: example.sparsity, explainer: fd, gate: {threshold: 0.2}}
report: {formats: [json, html], out_dir: out}
"""


def test_a_suite_runs_and_renders_the_section(xaudit_cli: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")  # the HTML report draws its figures with it
    X = np.random.default_rng(0).normal(size=(40, 3))
    np.savez(tmp_path / "data.npz", X=X, y=X @ [3.0, 1.0, 0.0])
    (tmp_path / "model.py").write_text(textwrap.dedent("""\
        def make():
            return lambda X: X @ [3.0, 1.0, 0.0]
        """))
    (tmp_path / "suite.yaml").write_text(SUITE)
    monkeypatch.chdir(tmp_path)
    done = xaudit_cli("--no-autoload", "-p", "xaudit_plugin_example", "run", "suite.yaml", "-q")
    assert done.exit_code == 0, done.stdout + done.stderr
    result = xaudit.AuditResult.load(tmp_path / "out")
    # slopes (3, 1, 0): Gini of (0, 1, 3) = (-2*0 + 0*1 + 2*3) / (3 * 4) = 1/2
    assert result.checks[0].value == pytest.approx(0.5)
    assert SparsitySection.title in (tmp_path / "out" / "report.html").read_text()
