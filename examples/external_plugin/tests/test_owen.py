"""Tests of xaudit-shap-partition: every case of xaudit's explainer kit, then the numbers.

The oracles are closed forms, not shap's own output (which the plugin calls): on an additive
model every hierarchy gives the Shapley values ``g_i(x_i) - E_b g_i(b_i)``, and Owen values of
any model add up to ``f(x)`` minus the mean output on the background.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xaudit
from xaudit.testing import parametrize_explainer_checks

from xaudit_shap_partition import OwenValues

METHOD = OwenValues.name


@pytest.mark.parametrize("case", parametrize_explainer_checks(OwenValues))
def test_conforms(case: Any) -> None:
    case()


def _additive(rows: np.ndarray) -> np.ndarray:
    return np.sin(rows[:, 0]) + rows[:, 1] ** 2 - 3.0 * rows[:, 2] + np.tanh(rows[:, 3])


def test_an_additive_model_gets_its_shapley_values(xaudit_host: xaudit.Host) -> None:
    rng = np.random.default_rng(0)
    X, background = rng.normal(size=(5, 4)), rng.normal(size=(30, 4))
    explanation = xaudit.explain(_additive, X, METHOD, background=background, host=xaudit_host)
    terms = np.stack([np.sin(X[:, 0]), X[:, 1] ** 2, -3.0 * X[:, 2], np.tanh(X[:, 3])], axis=1)
    means = np.stack([np.sin(background[:, 0]), background[:, 1] ** 2, -3.0 * background[:, 2],
                      np.tanh(background[:, 3])], axis=1).mean(axis=0)
    np.testing.assert_allclose(explanation.values[..., 0], terms - means, atol=1e-10)
    np.testing.assert_allclose(explanation.base_values[:, 0], _additive(background).mean(),
                               atol=1e-12)


def test_values_add_up_on_a_model_with_interactions(xaudit_host: xaudit.Host) -> None:
    rng = np.random.default_rng(1)
    X, background = rng.normal(size=(4, 8)), rng.normal(size=(30, 8))

    def interacting(rows: np.ndarray) -> np.ndarray:
        return np.column_stack([np.tanh(rows[:, 0] * rows[:, 1]) + rows[:, 2:].prod(axis=1),
                                rows[:, 3] * rows[:, 7]])

    explanation = xaudit.explain(interacting, X, METHOD, background=background,
                                 host=xaudit_host, max_evals=40)  # too few: unsplit clusters
    totals = explanation.values.sum(axis=1) + explanation.base_values
    np.testing.assert_allclose(totals, interacting(X), atol=1e-10)
    np.testing.assert_allclose(explanation.base_values, np.tile(
        interacting(background).mean(axis=0), (4, 1)), atol=1e-12)


SUITE = """\
name: owen-values
model: {factory: "model:make", output_names: [y]}
data: {source: data.npz, explain: {n: 5}, background: {n: 25}}
explainers:
  - {id: owen, method: shap_partition.owen, params: {max_evals: 200}}
checks:
  - {check: completeness, explainer: owen, gate: {threshold: 1.0e-9}}
report: {formats: [json], out_dir: out}
"""


def test_a_suite_runs_it(xaudit_cli: Any, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    X = np.random.default_rng(2).normal(size=(40, 4))
    np.savez(tmp_path / "data.npz", X=X)
    (tmp_path / "model.py").write_text(textwrap.dedent("""\
        import numpy as np

        def make():
            return lambda X: np.sin(X[:, 0]) * X[:, 1] + X[:, 2]
        """))
    (tmp_path / "suite.yaml").write_text(SUITE)
    monkeypatch.chdir(tmp_path)
    done = xaudit_cli("--no-autoload", "-p", "xaudit_shap_partition", "run", "suite.yaml", "-q")
    assert done.exit_code == 0, done.stdout + done.stderr
    (check,) = xaudit.AuditResult.load(tmp_path / "out").checks
    assert check.status == "pass"
