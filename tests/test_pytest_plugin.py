"""xaudit's pytest plugin, as a plugin author's test suite sees it (issue 18).

pytest finds it through the ``pytest11`` entry point (no ``conftest.py``, no ``-p``) and
``-p no:xaudit`` turns it off. Each fixture is used from a generated test module and checked
against what it must be, not against its own earlier output: the sample models against their
closed forms (an affine function, class probabilities, word counts), the host against the ini
option naming the author's plugin, the fake distribution against entry-point discovery, the CLI
runner against the exit codes the CLI documents, the sample result against a save and load.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from importlib.util import find_spec

import pytest

from xaudit.host import AUTOLOAD_ENV, BLOCK_ENV

pytest_plugins = ["pytester"]

AUTHOR_PLUGIN = '''
import numpy as np
from xaudit import Attribution, Explainer, hookimpl


class Zeros(Explainer):
    name = "author.zeros"
    summary = "Zero for every feature (a plugin under test)."

    def explain(self, model, X, *, background, targets, rng):
        return Attribution(values=np.zeros((X.shape[0], *X.shape[1:], targets.n_slots)),
                           base_values=np.zeros((X.shape[0], targets.n_slots)))


@hookimpl
def xaudit_register_explainers(registry):
    registry.add(Zeros)
'''

FIXTURE_TESTS = '''
import json

import numpy as np
import xaudit
from xaudit.results import AuditResult


def test_the_host_loads_the_ini_plugins(xaudit_host):
    assert "author.zeros" in xaudit_host.explainers
    assert "shap.exact" in xaudit_host.explainers  # with the built-ins


def test_the_tabular_model_is_affine_with_two_outputs(xaudit_tabular):
    model, X = xaudit_tabular.model, xaudit_tabular.X
    zero = model.predict(np.zeros((1, 4)))
    assert model.predict(X).shape == (X.shape[0], 2)
    np.testing.assert_allclose(model.predict(X[:3] + X[3:6]) + zero,
                               model.predict(X[:3]) + model.predict(X[3:6]), atol=1e-9)


def test_the_forest_gives_class_probabilities_and_its_trees(xaudit_trees):
    model = xaudit_trees.model
    probabilities = model.predict(xaudit_trees.X)
    assert probabilities.shape == (xaudit_trees.X.shape[0], 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert "tree_ensemble" in model.capabilities


def test_the_text_model_counts_words(xaudit_text):
    counts = xaudit_text.model.predict(np.array(["good good bad", "nothing here"]))
    np.testing.assert_array_equal(counts, [[2, 1], [0, 0]])


def test_the_torch_models_offer_gradients(xaudit_torch, xaudit_image):
    assert {"gradients", "layers"} <= xaudit_torch.model.capabilities
    assert xaudit_image.X.shape[1:] == (3, 8, 8)
    assert xaudit_image.model.predict(xaudit_image.X).shape[0] == xaudit_image.X.shape[0]


def test_the_sample_result_survives_a_save(xaudit_result, tmp_path):
    assert len(xaudit_result.explanations) == 2 and xaudit_result.explainer_errors
    assert int(xaudit_result.exit_code()) == 3  # the crash is part of the sample
    xaudit_result.save(tmp_path)
    back = AuditResult.load(tmp_path)
    assert sorted(back.explanations) == sorted(xaudit_result.explanations)
    assert sorted(back.explainer_errors) == sorted(xaudit_result.explainer_errors)


def test_a_fake_distribution_is_discovered(fake_distribution):
    fake_distribution("xaudit-plugin-author", "2.5", {"author": "author_plugin"})
    host = xaudit.create_host(autoload=True)
    assert "author.zeros" in host.explainers


def test_the_cli_runner_returns_code_and_outputs(xaudit_cli, fake_distribution):
    fake_distribution("xaudit-plugin-author", "2.5", {"author": "author_plugin"})
    listed = xaudit_cli("plugins", "--json")
    assert listed.exit_code == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "author")
    assert (row["distribution"], row["version"]) == ("xaudit-plugin-author", "2.5")
    missing = xaudit_cli("validate", "no-such-suite.yaml")
    assert missing.exit_code == 4 and missing.stderr
'''


@pytest.fixture
def author_tests(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A plugin author's folder: the plugin module, the ini option naming it, the tests."""
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(author_plugin=AUTHOR_PLUGIN, test_author=FIXTURE_TESTS)
    pytester.makeini("[pytest]\nxaudit_plugins = author_plugin\n")
    return pytester  # run in a subprocess (its folder on PYTHONPATH): an in-process run
    # unloads the modules it imported (sklearn, torch), which breaks later tests


def test_the_plugin_is_registered_as_pytest11() -> None:
    (point,) = [p for p in entry_points(group="pytest11") if p.name == "xaudit"]
    assert point.value == "xaudit.testing.pytest_plugin"


@pytest.mark.skipif(find_spec("torch") is None, reason="the torch fixtures need torch")
def test_every_fixture_works_in_an_authors_tests(author_tests: pytest.Pytester) -> None:
    # torch is not imported here: pytester unloads what a test imports, and torch cannot be
    # loaded twice in one process
    result = author_tests.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def test_no_xaudit_turns_the_plugin_off(author_tests: pytest.Pytester) -> None:
    result = author_tests.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xaudit",
                                              "-k", "host")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'xaudit_host' not found*"])
