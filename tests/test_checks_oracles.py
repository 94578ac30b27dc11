"""The checks against Quantus, Captum, scipy, scikit-image and brute force, on the same draws.

Both sides explain with the same plain gradient (a test-only explainer here; Quantus and Captum
get the same function on the raw module), and both get identical perturbations: the checks'
draw order is documented in their modules, and the oracles are fed those draws through their
perturbation hooks (Captum's ``perturb_func``, Quantus' ``perturb_func``) or, for Quantus'
``FaithfulnessCorrelation``, which draws subsets with ``np.random.choice``, by replaying ours.
Deletion and insertion are checked against Samek et al.'s loop (one single-row model call per
step) and scipy's Wilcoxon test; stability and agreement against scipy's Spearman and Student t;
SSIM against scikit-image. No expected number comes from our own output.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
quantus = pytest.importorskip("quantus")
captum_metrics = pytest.importorskip("captum.metrics")

from scipy import stats  # noqa: E402

import xaudit  # noqa: E402
from xaudit.explanation import Attribution  # noqa: E402
from xaudit.hookspecs import hookimpl  # noqa: E402
from xaudit.host import create_host  # noqa: E402
from xaudit.plugin import Explainer  # noqa: E402
from xaudit.seeding import rng_for  # noqa: E402

N, SHAPE = 10, (1, 8, 8)


class Gradient(Explainer):
    """d f_target / d x through the model's torch graph (test-only)."""

    name = "test.gradient"
    modalities = frozenset({"tabular", "image"})
    requires = frozenset({"gradients"})

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        x = model.to_tensors(X)[0].detach().requires_grad_()
        out = model.torch_forward(x)
        idx = torch.as_tensor(targets.indices, device=out.device)
        grads = []
        for j in range(idx.shape[1]):
            (g,) = torch.autograd.grad(out.gather(1, idx[:, j:j + 1]).sum(), x,
                                       retain_graph=True)
            grads.append(g.detach().cpu().numpy().astype(np.float64))
        return Attribution(values=np.stack(grads, axis=-1))


class Noisy(Explainer):
    """``x * slope + 0.5 * noise``: a stochastic stand-in with distinct values (test-only)."""

    name = "test.noisy"
    stochastic = True

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        slope = np.linspace(1.0, -1.0, X.shape[1])
        base = X * slope + 0.5 * rng.standard_normal(X.shape) * X.std(axis=0)
        return Attribution(values=np.repeat(base[..., None], targets.n_slots, axis=-1))


@hookimpl
def xaudit_register_explainers(registry: Any) -> None:
    registry.add(Gradient)
    registry.add(Noisy)


def module_gradient(module: Any, inputs: Any, targets: Any) -> np.ndarray:
    """The same gradient on a raw module (what Quantus and Captum are given)."""
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32).detach().requires_grad_()
    t = torch.as_tensor(np.asarray(targets)).long().view(-1, 1)
    with torch.enable_grad():  # Captum calls explanation functions under no_grad
        (g,) = torch.autograd.grad(module(x).gather(1, t).sum(), x)
    return g.detach().numpy()


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    from sklearn.datasets import load_digits
    from torch import nn

    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(),
                           nn.Linear(4 * 64, 16), nn.Tanh(), nn.Linear(16, 10)).eval()
    X = (load_digits().images[:N, None] / 16.0).astype(np.float32)
    host = create_host(plugins=[sys.modules[__name__]], autoload=False)
    model = xaudit.adapt(module, host=host, feature_shape=list(SHAPE))
    explanation = xaudit.explain(model, X, "test.gradient", target="predicted", host=host)
    targets = explanation.target_indices[:, 0]
    return {"module": module, "X": X, "host": host, "model": model, "e": explanation,
            "targets": targets, "a": explanation.values[..., 0].astype(np.float32)}


def test_faithfulness_correlation_matches_quantus(setup: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    runs, size, seed = 25, 12, 5
    ours = xaudit.check("faithfulness_correlation", setup["model"], setup["e"],
                        host=setup["host"], seed=seed, n_runs=runs, subset_size=size)
    keys = rng_for(seed).random((N, runs, 64))
    subsets = np.argsort(keys, axis=-1)[..., :size]
    replay = iter([subsets[r, run] for run in range(runs) for r in range(N)])
    monkeypatch.setattr(np.random, "choice", lambda *a, **k: next(replay))
    metric = quantus.FaithfulnessCorrelation(
        nr_runs=runs, subset_size=size, perturb_baseline=0.0, normalise=False, abs=False,
        return_aggregate=False, disable_warnings=True)
    theirs = metric(model=setup["module"], x_batch=setup["X"], y_batch=setup["targets"],
                    a_batch=setup["a"], channel_first=True, softmax=False, device="cpu")
    np.testing.assert_allclose(ours.values, np.asarray(theirs, dtype=float), rtol=1e-4,
                               atol=1e-5)
    assert ours.model_calls == 1  # the original rows and all runs go in one call


@pytest.mark.parametrize(("normalize", "perturbation"), [(False, "gaussian"),
                                                       (True, "gaussian"), (True, "subset")])
def test_infidelity_matches_captum(setup: dict[str, Any], normalize: bool,
                                   perturbation: str) -> None:
    samples, noise, seed, size = 16, 0.1, 3, 6
    ours = xaudit.check("infidelity", setup["model"], setup["e"], host=setup["host"],
                        seed=seed, n_samples=samples, noise=noise, normalize=normalize,
                        perturbation=perturbation, subset_size=size)
    rng = rng_for(seed)
    if perturbation == "gaussian":
        draws = rng.standard_normal((N, samples, *SHAPE)) * noise
    else:  # the subsets' features are set to 0: I = x there, 0 elsewhere
        keys = rng.random((N, samples, 64))
        chosen = np.zeros((N, samples, 64), dtype=bool)
        np.put_along_axis(chosen, np.argsort(keys, axis=-1)[..., :size], True, axis=-1)
        flat = setup["X"].reshape(N, 1, 64).astype(np.float64)
        draws = np.where(chosen, flat, 0.0).reshape(N, samples, *SHAPE)
    perturbation_ = torch.as_tensor(draws.reshape(N * samples, *SHAPE), dtype=torch.float32)

    def perturb(inputs: Any) -> tuple[Any, Any]:
        return perturbation_, inputs - perturbation_

    theirs = captum_metrics.infidelity(
        setup["module"], perturb, torch.as_tensor(setup["X"]), torch.as_tensor(setup["a"]),
        n_perturb_samples=samples, target=torch.as_tensor(setup["targets"]),
        normalize=normalize)
    np.testing.assert_allclose(ours.values, theirs.numpy(), rtol=2e-3, atol=1e-7)
    assert ours.model_calls == 1


def test_max_sensitivity_matches_captum(setup: dict[str, Any]) -> None:
    samples, radius, seed = 6, 0.05, 4
    ours = xaudit.check("max_sensitivity", setup["model"], setup["e"], host=setup["host"],
                        seed=seed, n_samples=samples, radius=radius)
    draws = rng_for(seed).uniform(-radius, radius, (N, samples, *SHAPE))
    delta = torch.as_tensor(draws.reshape(N * samples, *SHAPE), dtype=torch.float32)

    def explanation_func(inputs: Any, target: Any) -> Any:
        x = inputs[0] if isinstance(inputs, tuple) else inputs
        return (torch.as_tensor(module_gradient(setup["module"], x.detach(), target)),)

    theirs = captum_metrics.sensitivity_max(
        explanation_func, torch.as_tensor(setup["X"]), perturb_func=lambda x, r: x + delta,
        perturb_radius=radius, n_perturb_samples=samples,
        target=torch.as_tensor(setup["targets"]))
    np.testing.assert_allclose(ours.values, theirs.numpy(), rtol=1e-3, atol=1e-6)
    assert ours.details["reexplained_rows"] == N * samples


@pytest.mark.parametrize(("check", "metric_cls"), [("max_sensitivity", "MaxSensitivity"),
                                              ("avg_sensitivity", "AvgSensitivity")])
def test_sensitivity_matches_quantus(setup: dict[str, Any], check: str, metric_cls: str) -> None:
    samples, radius, seed = 5, 0.05, 6
    ours = xaudit.check(check, setup["model"], setup["e"], host=setup["host"], seed=seed,
                        n_samples=samples, radius=radius)
    draws = rng_for(seed).uniform(-radius, radius, (N, samples, 64))
    step = iter(range(samples))

    def perturb(arr: np.ndarray, indices: Any = None, **kwargs: Any) -> np.ndarray:
        return np.asarray(arr + draws[:, next(step)], dtype=np.float32)

    metric = getattr(quantus, metric_cls)(
        nr_samples=samples, perturb_func=perturb, normalise=False, abs=False,
        return_aggregate=False, disable_warnings=True)
    theirs = metric(model=setup["module"], x_batch=setup["X"], y_batch=setup["targets"],
                    a_batch=setup["a"], channel_first=True, softmax=False, device="cpu",
                    explain_func=lambda model, inputs, targets, **kw: module_gradient(
                        model, inputs, targets))
    np.testing.assert_allclose(ours.values, np.asarray(theirs, dtype=float), rtol=1e-3,
                               atol=1e-6)


def test_model_randomization_matches_quantus_mprt(setup: dict[str, Any]) -> None:
    seed = 11
    ours = xaudit.check("model_randomization", setup["model"], setup["e"], host=setup["host"],
                        absolute=True, mode="cascading", reinit_seed=seed)
    metric = quantus.MPRT(layer_order="top_down", seed=seed - 1, abs=True, normalise=False,
                          return_aggregate=False, disable_warnings=True)
    theirs = metric(model=setup["module"], x_batch=setup["X"], y_batch=setup["targets"],
                    a_batch=setup["a"], channel_first=True, softmax=False, device="cpu",
                    explain_func=lambda model, inputs, targets, **kw: module_gradient(
                        model, inputs, targets))
    layers = [name for name in theirs if name not in ("original", "orig")]
    assert layers == ours.details["stages"]
    expected = [float(np.mean(theirs[name])) for name in layers]
    np.testing.assert_allclose(ours.details["stage_similarity"], expected, rtol=1e-3,
                               atol=1e-4)
    np.testing.assert_allclose(ours.values, np.asarray(theirs[layers[-1]], dtype=float),
                               rtol=1e-3, atol=1e-4)


# --- deletion, insertion, stability, agreement: brute force and scipy -------------------------


@pytest.fixture(scope="module")
def tabular(setup: dict[str, Any]) -> dict[str, Any]:
    """Boosted trees on diabetes, 12 rows explained by the stochastic test explainer."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = load_diabetes(return_X_y=True)
    estimator = GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0)
    estimator.fit(X[:300], y[:300])
    model = xaudit.adapt(estimator, host=setup["host"])
    rows, bg = X[300:312], X[:40]
    explanation = xaudit.explain(model, rows, "test.noisy", host=setup["host"], seed=2)
    return {"estimator": estimator, "model": model, "X": X, "rows": rows, "bg": bg,
            "e": explanation}


def brute_area(predict: Any, x: np.ndarray, fill: np.ndarray, scores: np.ndarray, steps: int,
               insertion: bool, morf: bool) -> tuple[float, np.ndarray]:
    """Samek's region perturbation, one single-row model call per step."""
    order = np.argsort(-scores if morf else scores, kind="stable")
    curve = []
    for s in range(steps + 1):
        chosen = order[:int(np.ceil(s * x.size / steps))]
        row = fill.copy() if insertion else x.copy()
        row[chosen] = x[chosen] if insertion else fill[chosen]
        curve.append(float(predict(row[None, :])[0]))
    return float(np.trapezoid(curve, dx=1.0 / steps)), np.asarray(curve)


@pytest.mark.parametrize(("name", "order"), [("deletion", "morf"), ("insertion", "morf"),
                                             ("deletion", "lerf")])
def test_curves_match_brute_force(setup: dict[str, Any], tabular: dict[str, Any], name: str,
                                  order: str) -> None:
    e = tabular["e"]
    predict = tabular["estimator"].predict
    brute_force_curves(setup, tabular["model"], e, tabular["bg"], name, order,
                       lambda rows, slot: predict(rows))


def test_curves_match_brute_force_on_every_output(setup: dict[str, Any]) -> None:
    """Three class probabilities, each ranked by its own attributions, in the same calls."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    estimator = LogisticRegression(max_iter=500).fit(X, y)
    model = xaudit.adapt(estimator, host=setup["host"])
    e = xaudit.explain(model, X[::10], "test.noisy", host=setup["host"], target="all", seed=4)
    assert e.values.shape == (15, 4, 3)
    brute_force_curves(setup, model, e, X, "deletion", "morf",
                       lambda rows, slot: estimator.predict_proba(rows)[:, slot])


def brute_force_curves(setup: dict[str, Any], model: Any, e: Any, bg: np.ndarray, name: str,
                       order: str, predict: Any) -> None:
    """Our curve check against Samek's loop, one single-row call per step, row and output; the
    curve it hands to the report against the same loop's curves."""
    steps, n_random, seed = 5, 2, 9
    ours = xaudit.check(name, model, e, host=setup["host"], seed=seed, steps=steps,
                        order=order, n_random=n_random, removal="mean", background=bg)
    fill, rows = bg.mean(axis=0), e.inputs
    insertion, morf = name == "insertion", order == "morf"
    # the random attributions: drawn as the module docstring says (no draw for a mean fill)
    random = rng_for(seed).spawn(1)[0].standard_normal((n_random, *e.values.shape))
    gains, areas = np.zeros(e.values.shape[::2]), np.zeros(e.values.shape[::2])
    curves = np.zeros((1 + n_random, *e.values.shape[::2], steps + 1))  # ours, then random
    random_areas = np.zeros((n_random, *e.values.shape[::2]))
    for r in range(rows.shape[0]):
        for slot in range(e.values.shape[-1]):
            target = int(e.target_indices[r, slot])

            def f(row: np.ndarray, target: int = target) -> np.ndarray:
                return np.asarray(predict(row, target))

            area, curve = brute_area(f, rows[r], fill, e.values[r, :, slot], steps, insertion,
                                     morf)
            others = [brute_area(f, rows[r], fill, random[j, r, :, slot], steps, insertion,
                                 morf) for j in range(n_random)]
            span = np.concatenate([curve, *[c for _, c in others]])
            better = 1.0 if insertion == morf else -1.0
            gains[r, slot] = better * (area - np.mean([a for a, _ in others])) / np.ptp(span)
            areas[r, slot] = area
            curves[:, r, slot] = [curve, *[c for _, c in others]]
            random_areas[:, r, slot] = [a for a, _ in others]
    np.testing.assert_allclose(ours.values, gains.mean(axis=1), rtol=1e-9, atol=1e-12)
    assert ours.details["area"] == pytest.approx(areas.mean(), rel=1e-9)
    expected_p = stats.wilcoxon(gains.mean(axis=1), alternative="greater").pvalue
    assert ours.details["p_value"] == pytest.approx(expected_p, rel=1e-9)
    assert ours.model_calls == steps + 1
    (handed,) = ours.handoff.curves
    explained, randomized = handed.series
    np.testing.assert_allclose(handed.x, np.arange(steps + 1) / steps, rtol=0, atol=1e-15)
    np.testing.assert_allclose(explained.y, curves[0].mean(axis=(0, 1)), rtol=1e-9)
    per_row = curves[1:].mean(axis=(0, 2))  # each row's random curve, orderings and slots
    np.testing.assert_allclose(randomized.y, per_row.mean(axis=0), rtol=1e-9)
    half = 1.96 * per_row.std(axis=0, ddof=1) / np.sqrt(rows.shape[0])
    assert randomized.band is not None
    np.testing.assert_allclose(randomized.band.lower, per_row.mean(axis=0) - half, rtol=1e-9)
    np.testing.assert_allclose(randomized.band.upper, per_row.mean(axis=0) + half, rtol=1e-9)
    from_start = (areas - curves[0, ..., 0]) * (1.0 if insertion else -1.0)
    assert [a.value for a in handed.areas] == pytest.approx(
        [areas.mean(), random_areas.mean(), from_start.mean()], rel=1e-9)


@pytest.mark.parametrize(("max_batch", "calls"), [(8192, 21), (100, 42)])
def test_deletion_cost_is_batched(setup: dict[str, Any], tabular: dict[str, Any],
                                  max_batch: int, calls: int) -> None:
    """20 steps on 100 rows: 21 model calls per row block, not 2,000 single calls."""
    rows = tabular["X"][300:400]
    e = xaudit.explain(tabular["model"], rows, "test.noisy", host=setup["host"])
    ours = xaudit.check("deletion", tabular["model"], e, host=setup["host"], steps=20,
                        max_batch=max_batch)  # 2 orderings per row: 50 rows per block at 100
    assert ours.model_calls == calls
    assert ours.details["model_calls"] == calls
    assert ours.wall_time_s > 0


def test_patch_and_superpixel_groups(tabular: dict[str, Any]) -> None:
    """Patch labels by the definition; superpixels partition each image into connected sets."""
    from xaudit.plugins._support.groups import group_labels

    images = np.random.default_rng(0).random((2, 3, 10, 9))
    labels = group_labels(images, "patch", patch_size=4)
    for i in range(10):
        for j in range(9):
            assert np.all(labels[:, :, i, j] == (i // 4) * 3 + j // 4)
    superpixels = group_labels(images, "superpixel", n_segments=9)
    assert np.all(superpixels == superpixels[:, :1])  # the same label across channels
    for r in range(2):
        assert set(np.unique(superpixels[r])) == set(range(superpixels[r].max() + 1))


def test_stability_matches_scipy(setup: dict[str, Any], tabular: dict[str, Any]) -> None:
    repeats, top_k = 3, 4
    e = tabular["e"]
    ours = xaudit.check("stability", tabular["model"], e, host=setup["host"],
                        repeats=repeats, top_k=top_k)
    runs = np.stack([xaudit.explain(tabular["model"], tabular["rows"], "test.noisy",
                                    host=setup["host"], seed=e.seed + r).values[..., 0]
                     for r in range(repeats + 1)])  # (R, n, d)
    expected = []
    for r in range(runs.shape[1]):
        top = np.argsort(-np.abs(runs[:, r]).mean(axis=0))[:top_k]
        rhos = [stats.spearmanr(runs[a, r, top], runs[b, r, top]).statistic
                for a in range(repeats + 1) for b in range(a + 1, repeats + 1)]
        expected.append(np.mean(rhos))
    np.testing.assert_allclose(ours.values, expected, rtol=1e-9, atol=1e-12)
    low, high = stats.t.interval(0.95, repeats, loc=runs.mean(axis=0),
                                 scale=stats.sem(runs, axis=0))
    np.testing.assert_allclose(ours.details["ci_half_width"], ((high - low) / 2).mean(axis=0),
                               rtol=1e-9)
    assert ours.details["stochastic"] is True
    assert ours.details["reexplained_rows"] == repeats * tabular["rows"].shape[0]


def test_agreement_matches_scipy(setup: dict[str, Any], tabular: dict[str, Any]) -> None:
    e = tabular["e"]
    other = xaudit.explain(tabular["model"], tabular["rows"], "ablation", host=setup["host"],
                           background=tabular["bg"])
    ours = xaudit.check("agreement", tabular["model"], e, host=setup["host"], reference=other,
                        top_k=3)
    a, b = np.abs(e.values[..., 0]), np.abs(other.values[..., 0])
    rho = [stats.spearmanr(a[r], b[r]).statistic for r in range(a.shape[0])]
    overlap = [len(set(np.argsort(-a[r])[:3]) & set(np.argsort(-b[r])[:3])) / 3
               for r in range(a.shape[0])]
    np.testing.assert_allclose(ours.values, rho, rtol=1e-9)
    assert ours.details["top_k_overlap"] == pytest.approx(np.mean(overlap))
    by_overlap = xaudit.check("agreement", tabular["model"], e, host=setup["host"],
                              reference=other, top_k=3, metric="top_k_overlap")
    np.testing.assert_allclose(by_overlap.values, overlap)


@pytest.mark.parametrize("shape", [(8, 8), (12, 9), (5, 6)])
def test_ssim_matches_scikit_image(shape: tuple[int, int]) -> None:
    metrics = pytest.importorskip("skimage.metrics")
    from xaudit.plugins._support.ssim import ssim

    rng = np.random.default_rng(1)
    a = rng.random(shape) * 3.0 - 1.0
    b = a + rng.normal(scale=0.5, size=shape)

    def unit(m: np.ndarray) -> np.ndarray:
        return (m - m.min()) / np.ptp(m)

    window = min(7, *shape) - (1 - min(7, *shape) % 2)
    expected = metrics.structural_similarity(unit(a), unit(b), data_range=1.0, win_size=window)
    assert ssim(a, b) == pytest.approx(expected, rel=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["deletion", "faithfulness_correlation", "stability"])
def test_global_explanations_are_refused(setup: dict[str, Any], tabular: dict[str, Any],
                                         name: str) -> None:
    import dataclasses

    from xaudit.errors import InputError
    from xaudit.handoff import Handoff

    e = dataclasses.replace(tabular["e"], handoff=Handoff(kind="global"))
    with pytest.raises(InputError, match="global explanation"):
        xaudit.check(name, tabular["model"], e, host=setup["host"])


def test_checks_are_registered_and_well_formed() -> None:
    from xaudit.testing import check_is_well_formed

    host = create_host(autoload=False)
    names = ["deletion", "insertion", "faithfulness_correlation", "infidelity",
             "max_sensitivity", "avg_sensitivity", "model_randomization", "stability",
             "agreement"]
    for name in names:
        cls = host.checks.get(name)
        check_is_well_formed(cls)
        assert cls.paper, name
        assert cls.direction == ("lower" if name in {
            "infidelity", "max_sensitivity", "avg_sensitivity", "model_randomization"}
            else "higher")
