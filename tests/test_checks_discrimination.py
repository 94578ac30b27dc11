"""The sanity checks discriminate: good explainers pass, explainers that ignore the model fail.

Issue 7's acceptance test. On three trained models from ``examples/sanity/models.py`` (boosted
trees, a torch MLP, a torch CNN on the 8x8 digits), TreeSHAP, Integrated Gradients and
KernelSHAP pass ``model_randomization`` (Adebayo et al. 2018) and ``deletion`` against random
orderings (Samek et al. 2017), each gated as a suite would gate it, while the deliberately
broken explainers of ``examples/sanity/broken_explainers.py`` (random numbers, the input
itself, a Sobel edge detector) fail both. The oracle for the broken side is a fact about them,
not our numbers: an explanation that never calls the model is identical after any
randomization of the model, so its rank correlation with itself is exactly 1.

The runnable example (``examples/sanity/suite.yaml``) runs through the CLI: the failed gates
give exit code 1 and name the check, its value and its threshold.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import xaudit
from xaudit.cli import main
from xaudit.data import Dataset
from xaudit.host import create_host
from xaudit.suite import GateSpec

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

SANITY = Path(__file__).resolve().parents[1] / "examples" / "sanity"
RANDOMIZATION_GATE = GateSpec(threshold=0.5)  # Spearman(original, randomized) at most 0.5
SSIM_GATE = GateSpec(threshold=0.8)
DELETION_GATE = GateSpec(threshold=0.05)  # beat random by 5% of the curve's range ...
DELETION = {"alpha": 0.01, "steps": 16}  # ... significantly (Wilcoxon, one-sided)


def _load(name: str) -> ModuleType:
    """An example module under a private name (the CLI test imports them by their own)."""
    spec = importlib.util.spec_from_file_location(f"xaudit_sanity_{name}", SANITY / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, Any]]:
    """Trained models, explained rows and backgrounds, and a host with the broken explainers.

    Torch runs on one thread here: these models are tiny, and on a busy machine more threads
    only contend.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield _build()
    finally:
        torch.set_num_threads(threads)


def _build() -> dict[str, Any]:
    models, broken = _load("models"), _load("broken_explainers")
    host = create_host(plugins=[broken])
    X, y = models.tabular_data(600)
    tab = {"X": X[450:480], "bg": X[:40],
           "data": Dataset.from_arrays(X[:450], y[:450], background=X[:40])}
    images, labels = models.digits()
    cnn = models.cnn_model(images[:1000], labels[:1000])
    flat = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8, 8)), cnn).eval()
    return {
        "host": host,
        "tree": {**tab, "model": xaudit.adapt(models.tree_model(X[:450], y[:450]), host=host)},
        "mlp": {**tab, "model": xaudit.adapt(models.mlp_model(X[:450], y[:450]), host=host,
                                             feature_shape=[6])},
        "cnn": {"X": images[1200:1230], "bg": images[:1000].mean(0, keepdims=True),
                "model": xaudit.adapt(cnn, host=host, feature_shape=[1, 8, 8])},
        # the same CNN seen as 64 tabular features, so KernelSHAP can explain it
        "cnn_flat": {"X": images[1200:1210].reshape(10, 64),
                     "bg": images[:1000].mean(0).reshape(1, 64),
                     "model": xaudit.adapt(flat, host=host, feature_shape=[64])},
    }


def _explain(env: dict[str, Any], key: str, method: str, **params: Any) -> Any:
    case = env[key]
    return xaudit.explain(case["model"], case["X"], method, background=case["bg"],
                          target="predicted", host=env["host"], **params)


def _check(env: dict[str, Any], key: str, explanation: Any, name: str, gate: GateSpec,
           **params: Any) -> Any:
    case = env[key]
    return xaudit.check(name, case["model"], explanation, data=case.get("data"), gate=gate,
                        background=case["bg"], host=env["host"], **params)


GOOD = [("tree", "shap.tree", {}), ("tree", "shap.kernel", {}),
        ("mlp", "gradient.integrated", {}), ("mlp", "shap.kernel", {}),
        ("cnn", "gradient.integrated", {})]
BROKEN = [("tree", "broken.random"), ("tree", "broken.input"),
          ("mlp", "broken.random"), ("mlp", "broken.input"),
          ("cnn", "broken.random"), ("cnn", "broken.edge")]


def _removal(key: str) -> dict[str, Any]:
    return {"removal": "baseline"} if key == "cnn" else {"removal": "mean"}


@pytest.mark.parametrize(("key", "method", "params"), GOOD)
def test_faithful_explainers_pass(env: dict[str, Any], key: str, method: str,
                                  params: dict[str, Any]) -> None:
    e = _explain(env, key, method, **params)
    randomized = _check(env, key, e, "model_randomization", RANDOMIZATION_GATE)
    deletion = _check(env, key, e, "deletion", DELETION_GATE, **DELETION, **_removal(key))
    assert randomized.status == "pass", randomized.verdict()
    assert deletion.status == "pass", (deletion.verdict(), deletion.details["p_value"])
    assert deletion.details["p_value"] < 0.01
    assert deletion.model_calls == DELETION["steps"] + 1  # one batched call per step
    expected = {"tree": "leaves", "mlp": "layers", "cnn": "layers"}[key]
    assert randomized.details["randomization"] == expected


@pytest.mark.parametrize(("key", "method"), BROKEN)
def test_broken_explainers_fail(env: dict[str, Any], key: str, method: str) -> None:
    e = _explain(env, key, method)
    randomized = _check(env, key, e, "model_randomization", RANDOMIZATION_GATE)
    deletion = _check(env, key, e, "deletion", DELETION_GATE, **DELETION, **_removal(key))
    assert randomized.status == "fail"
    # it never calls the model, so every randomized stage gives the same attributions
    assert randomized.details["stage_similarity"] == pytest.approx(
        [1.0] * len(randomized.details["stages"]))
    assert deletion.status == "fail", deletion.verdict()
    assert not (deletion.details["mean_gain"] >= 0.05 and deletion.details["p_value"] < 0.01)


def test_cnn_ssim_blur_and_insertion_discriminate(env: dict[str, Any]) -> None:
    """SSIM (Adebayo's image similarity), blur removal, insertion and superpixels on the CNN."""
    ig, edge = _explain(env, "cnn", "gradient.integrated"), _explain(env, "cnn", "broken.edge")
    blur = {"removal": "blur", "blur_sigma": 1.5, "alpha": 0.01, "steps": 16}
    for e, verdict in ((ig, "pass"), (edge, "fail")):
        ssim = _check(env, "cnn", e, "model_randomization", SSIM_GATE, similarity="ssim")
        assert ssim.status == verdict, ssim.verdict()
        for name in ("deletion", "insertion"):
            result = _check(env, "cnn", e, name, DELETION_GATE, **blur)
            assert result.status == verdict, result.verdict()
    # superpixels (and patches) are too coarse to fail the edge map: edges hug the strokes the
    # model reads, so removing them beats random; model_randomization is what catches it
    superpixels = _check(env, "cnn", ig, "deletion", DELETION_GATE, grouping="superpixel",
                         n_segments=12, **DELETION, removal="baseline")
    assert superpixels.status == "pass", superpixels.verdict()
    assert superpixels.details["n_groups"] <= 16
    independent = _check(env, "cnn", ig, "model_randomization", RANDOMIZATION_GATE,
                         mode="independent", aggregate="max")
    assert len(independent.details["stages"]) == 3  # conv, conv, linear: one at a time
    assert independent.details["mode"] == "independent"


@pytest.mark.parametrize(("method", "verdict"), [("shap.tree", "pass"),
                                                 ("broken.random", "fail")])
def test_tree_label_randomization(env: dict[str, Any], method: str, verdict: str) -> None:
    """The data randomization test: the trees are retrained on permuted labels."""
    e = _explain(env, "tree", method)
    result = _check(env, "tree", e, "model_randomization", RANDOMIZATION_GATE,
                    randomization="labels")
    assert result.details["randomization"] == "labels"
    assert result.status == verdict, result.verdict()


@pytest.mark.slow
def test_kernel_shap_on_the_cnn_passes(env: dict[str, Any]) -> None:
    """KernelSHAP needs tabular rows: the CNN behind an Unflatten, 64 pixel features."""
    e = _explain(env, "cnn_flat", "shap.kernel", n_samples=512)
    randomized = _check(env, "cnn_flat", e, "model_randomization", RANDOMIZATION_GATE,
                        max_layers=1)  # the output layer: one more KernelSHAP run, not three
    deletion = _check(env, "cnn_flat", e, "deletion", DELETION_GATE, **DELETION,
                      removal="baseline")
    assert randomized.status == "pass", randomized.verdict()
    assert deletion.status == "pass", deletion.verdict()


# --- the runnable example through the CLI --------------------------------------------------------


@pytest.fixture
def on_sanity_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(SANITY))
    before = {name: sys.modules.get(name) for name in ("models", "broken_explainers")}
    yield
    for name, module in before.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


def test_example_suite_exit_1_names_failed_gates(on_sanity_path: None, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-p", "broken_explainers", "run", "-q", str(SANITY / "suite.yaml"),
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "GATE_FAILED (exit 1)" in out
    assert "model_randomization@random: FAIL value 1 (gate: <= 0.5)" in out
    assert "model_randomization@treeshap: PASS" in out
    assert "deletion@treeshap: PASS" in out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("deletion@random:")]
    assert "FAIL value" in line
    assert "(gate: >= 0.05)" in line
    document = json.loads((tmp_path / "results.json").read_text())
    checks = {c["name"]: c for c in document["checks"]}
    failed = checks["deletion@random"]
    assert failed["status"] == "fail"
    assert failed["threshold"] == 0.05
    assert f"{failed['value']:.6g}" in line
    assert checks["deletion@random"]["model_calls"] == 11  # steps: 10, one call per step


EVERY_CHECK = [
    ("completeness", "treeshap", {}, {"threshold": 1e-6}),
    ("deletion", "treeshap", {"removal": "mean", "steps": 10}, {"threshold": 0.05}),
    ("insertion", "treeshap", {"removal": "background", "steps": 10}, {"threshold": 0.05}),
    ("faithfulness_correlation", "treeshap", {"n_runs": 50}, {"threshold": 0.3}),
    ("infidelity", "treeshap", {"noise": 0.005, "n_samples": 20}, {"threshold": 1e4}),
    ("max_sensitivity", "treeshap", {"n_samples": 4, "radius": 0.001}, {"threshold": 1.0}),
    ("avg_sensitivity", "treeshap", {"n_samples": 4, "radius": 0.001}, {"threshold": 1.0}),
    ("model_randomization", "treeshap", {"randomization": "labels"}, {"threshold": 0.5}),
    ("stability", "kernel", {"repeats": 2, "top_k": 5}, {"threshold": 0.5}),
    ("agreement", "kernel", {"top_k": 3}, {"threshold": 0.5}),
]


def test_every_check_runs_gated_from_a_suite(on_sanity_path: None, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Each check through the runner, with its params and a gate: TreeSHAP passes them all."""
    import yaml

    (tmp_path / "models.py").write_text((SANITY / "models.py").read_text())
    suite = {
        "name": "every-check", "seed": 5,
        "model": {"factory": "models:factory", "task": "regression"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 20},
                 "background": {"n": 40}},
        "explainers": [{"id": "treeshap", "method": "shap.tree"},
                       {"id": "kernel", "method": "shap.kernel", "params": {"n_samples": 256}}],
        "checks": [{"check": name, "explainer": explainer, "params": params, "gate": gate,
                    **({"reference": "treeshap"} if name == "agreement" else {})}
                   for name, explainer, params, gate in EVERY_CHECK],
        "report": {"formats": ["json"]},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    code = main(["run", "-q", str(path), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0, out
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    by_check = {c["check"]: c for c in document["checks"]}
    assert set(by_check) == {name for name, *_ in EVERY_CHECK}
    for name, result in by_check.items():
        assert result["status"] == "pass", (name, result["value"])
        assert result["wall_time_s"] > 0
    assert by_check["stability"]["details"]["stochastic"] is True
    assert by_check["deletion"]["model_calls"] == 11
