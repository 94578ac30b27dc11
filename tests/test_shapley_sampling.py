"""``shap.exact``, ``shap.kernel`` and ``shap.permutation`` against brute-force Shapley values.

Oracle: the exact Shapley values of the marginal game ``v(S) = mean_b f(x_S, b_notS)`` over the
same background, enumerated here with itertools and the Shapley formula (independently of the
plugins), plus shap's ExactExplainer and KernelExplainer (shap 0.51) and scikit-learn's KMeans.
Models: fixed random numpy MLPs (tanh, two outputs) and scikit-learn estimators.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from math import factorial

import numpy as np
import pytest
import shap
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression

import xaudit
from xaudit.errors import InputError

Fn = Callable[[np.ndarray], np.ndarray]
SAMPLERS = ("shap.kernel", "shap.permutation")


def random_mlp(d: int, outputs: int = 2, hidden: int = 24, seed: int = 0) -> Fn:
    """A fixed two-hidden-layer tanh network: interactions of every order."""
    r = np.random.default_rng(seed)
    W1, b1 = r.normal(size=(d, hidden)) * 1.5 / np.sqrt(d), r.normal(size=hidden) * 0.5
    W2, b2 = r.normal(size=(hidden, hidden)) / np.sqrt(hidden), r.normal(size=hidden) * 0.5
    W3 = r.normal(size=(hidden, outputs)) / np.sqrt(hidden)

    def f(X: np.ndarray) -> np.ndarray:
        h = np.tanh(np.asarray(X, dtype=np.float64) @ W1 + b1)
        return np.asarray(np.tanh(h @ W2 + b2) @ W3)

    return f


def brute_force(f: Fn, x: np.ndarray, background: np.ndarray,
                weights: np.ndarray | None = None) -> np.ndarray:
    """Exact Shapley values ``(d, k)`` of the marginal game, every coalition enumerated.

    ``phi_i = sum_{S not containing i} |S|! (d-|S|-1)! / d! (v(S + i) - v(S))``, with the
    coalitions listed by itertools in binary order (coalition ``c`` holds feature ``j`` when
    bit ``d-1-j`` of ``c`` is set).
    """
    d = x.size
    w_bg = np.full(len(background), 1.0 / len(background)) if weights is None else weights
    coalitions = np.array(list(itertools.product([False, True], repeat=d)))
    parts = []
    for start in range(0, len(coalitions), 4096):
        masks = coalitions[start:start + 4096]
        rows = np.where(masks[:, None, :], x[None, None, :], background[None, :, :])
        out = f(rows.reshape(-1, d)).reshape(len(masks), len(background), -1)
        parts.append(np.einsum("cbk,b->ck", out, w_bg))
    value = np.concatenate(parts)
    sizes = coalitions.sum(1)
    weight = np.array([factorial(s) * factorial(d - s - 1) / factorial(d) for s in range(d)])
    phi = np.zeros((d, value.shape[1]))
    for i in range(d):
        without = np.flatnonzero(~coalitions[:, i])
        with_i = without + 2 ** (d - 1 - i)
        assert np.all(coalitions[with_i, i])
        phi[i] = weight[sizes[without]] @ (value[with_i] - value[without])
    return phi


def oracle(f: Fn, X: np.ndarray, background: np.ndarray) -> np.ndarray:
    return np.stack([brute_force(f, x, background) for x in X])


def rel_l2(estimate: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact))


# ---------------------------------------------------------------------------------- exact


@pytest.mark.parametrize("d", [3, 7, 10])
def test_exact_equals_brute_force(d: int) -> None:
    f = random_mlp(d, seed=d)
    r = np.random.default_rng(d)
    X, background = r.normal(size=(3, d)), r.normal(size=(6, d))
    exp = xaudit.explain(f, X, method="shap.exact", background=background, seed=0,
                         max_batch=1000, chunk_coalitions=300)
    assert exp.values.shape == (3, d, 2)
    np.testing.assert_allclose(exp.values, oracle(f, X, background), atol=1e-10, rtol=0)
    np.testing.assert_allclose(exp.base_values, np.broadcast_to(f(background).mean(0), (3, 2)),
                               atol=1e-12)


def _null_player_case() -> tuple[Fn, np.ndarray, np.ndarray]:
    d = 8
    f = random_mlp(d, seed=3)
    r = np.random.default_rng(3)
    X, background = r.normal(size=(4, d)), r.normal(size=(5, d))
    background[:, 2] = X[:, 2] = 0.7  # the same everywhere: a null player
    X[1, 5] = background[:, 5] = 0.0  # null in row 1 only
    return f, X, background


def test_exact_null_players() -> None:
    f, X, background = _null_player_case()
    exp = xaudit.explain(f, X, method="shap.exact", background=background, seed=0)
    np.testing.assert_allclose(exp.values, oracle(f, X, background), atol=1e-10, rtol=0)
    assert np.all(exp.values[:, 2] == 0.0)
    assert np.all(exp.values[1, 5] == 0.0)
    assert exp.metadata["varying_features"] == [7, 6, 7, 7]


@pytest.mark.slow  # shap's ExactExplainer compiles with numba on first use (~30 s)
def test_exact_equals_shap_exact_explainer() -> None:
    f, X, background = _null_player_case()
    exp = xaudit.explain(f, X, method="shap.exact", background=background, seed=0)
    reference = shap.explainers.Exact(f, shap.maskers.Independent(background, max_samples=100))
    np.testing.assert_allclose(exp.values, reference(X).values, atol=1e-9, rtol=0)
    np.testing.assert_allclose(exp.base_values, reference(X).base_values, atol=1e-12)


def test_exact_on_a_sklearn_classifier_and_targets() -> None:
    r = np.random.default_rng(5)
    X = r.normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
    clf = LogisticRegression().fit(X, y)
    rows, background = X[:4], X[100:112]
    exp = xaudit.explain(clf, rows, method="shap.exact", background=background, seed=0)
    np.testing.assert_allclose(exp.values, oracle(clf.predict_proba, rows, background),
                               atol=1e-10, rtol=0)
    one = xaudit.explain(clf, rows, method="shap.exact", background=background, target=2)
    np.testing.assert_allclose(one.values[..., 0], exp.values[..., 2], atol=1e-12)


def test_exact_refuses_too_many_features() -> None:
    f = random_mlp(12)
    X = np.random.default_rng(0).normal(size=(2, 12))
    with pytest.raises(InputError, match="max_features"):
        xaudit.explain(f, X, method="shap.exact", background=X[::-1], max_features=10)


# ------------------------------------------------------------------------ kernel, permutation


@pytest.mark.parametrize("method", SAMPLERS)
def test_sampling_converges_on_16_features(method: str) -> None:
    d = 16
    f = random_mlp(d, seed=16)
    r = np.random.default_rng(16)
    X, background = r.normal(size=(2, d)), r.normal(size=(6, d))
    exact = oracle(f, X, background)
    errors = []
    for budget in (512, 8192):
        exp = xaudit.explain(f, X, method=method, background=background, seed=1,
                             n_samples=budget)
        assert exp.values.shape == exact.shape
        assert exp.std_errors is not None
        # efficiency holds exactly, whatever the sampling error
        np.testing.assert_allclose(exp.values.sum(1) + exp.base_values, f(X), atol=1e-10)
        errors.append(rel_l2(exp.values, exact))
    assert errors[1] < 0.5 * errors[0]
    assert errors[1] < (0.01 if method == "shap.kernel" else 0.03)


def test_kernel_beats_shap_kernel_explainer_at_equal_budget() -> None:
    d = 12
    f = random_mlp(d, outputs=1, seed=12)
    r = np.random.default_rng(12)
    X, background = r.normal(size=(4, d)), r.normal(size=(8, d))
    exact = oracle(f, X, background)[..., 0]
    ours = xaudit.explain(f, X, method="shap.kernel", background=background, seed=0,
                          n_samples=1024).values[..., 0]
    explainer = shap.KernelExplainer(lambda Z: f(Z)[:, 0], background)
    np.random.seed(0)
    theirs = explainer.shap_values(X, nsamples=1024, l1_reg=0, silent=True)
    assert rel_l2(ours, exact) < rel_l2(np.asarray(theirs), exact)


def test_kernel_pools_rows_in_blocks_whatever_the_model_call_grouping() -> None:
    """Rows are fitted in blocks of POOL_ROWS on one shared design, rows whose varying
    features differ apart: 70 rows (two blocks), one of them equal to the background in
    feature 2 (a null player, fitted on its own), against brute force; the grouping of model
    calls (``max_batch``) changes nothing but the model's own rounding (its matrix products
    round differently for another number of rows)."""
    from xaudit.plugins.shapley.kernel import POOL_ROWS

    d = 8
    f = random_mlp(d, seed=8)
    r = np.random.default_rng(8)
    background = r.normal(size=(4, d))
    background[:, 2] = 0.5
    X = r.normal(size=(POOL_ROWS + 6, d))
    X[5, 2] = 0.5
    runs = [xaudit.explain(f, X, method="shap.kernel", background=background, seed=3,
                           n_samples=96, **batch) for batch in ({}, {"max_batch": 1000})]
    np.testing.assert_allclose(runs[0].values, runs[1].values, rtol=0, atol=1e-10)
    np.testing.assert_allclose(runs[0].std_errors, runs[1].std_errors, rtol=0, atol=1e-10)
    exact = oracle(f, X, background)
    assert np.all(runs[0].values[5, 2] == 0.0)
    for block in (slice(0, POOL_ROWS), slice(POOL_ROWS, None)):
        assert rel_l2(runs[0].values[block], exact[block]) < 0.05
    np.testing.assert_allclose(runs[0].values.sum(1) + runs[0].base_values, f(X), atol=1e-10)


@pytest.mark.parametrize("method", SAMPLERS)
def test_standard_errors_cover_at_nominal_rate(method: str) -> None:
    d = 10
    f = random_mlp(d, seed=10)
    r = np.random.default_rng(10)
    X, background = r.normal(size=(30, d)), r.normal(size=(5, d))
    exact = oracle(f, X, background)
    exp = xaudit.explain(f, X, method=method, background=background, seed=2, n_samples=256)
    assert exp.std_errors is not None
    assert np.all(exp.std_errors > 0)
    z = np.abs(exp.values - exact) / exp.std_errors
    # 600 values; under a normal approximation 95.4% fall within 2 standard errors
    assert 0.88 <= np.mean(z < 2.0) <= 0.995
    assert 0.55 <= np.mean(z < 1.0) <= 0.80


@pytest.mark.parametrize("d", [2, 3, 7])
def test_kernel_budget_covering_every_coalition_is_exact(d: int) -> None:
    f = random_mlp(d, seed=7)
    r = np.random.default_rng(7)
    X, background = r.normal(size=(3, d)), r.normal(size=(4, d))
    exp = xaudit.explain(f, X, method="shap.kernel", background=background, seed=0,
                         n_samples=2 ** d)
    np.testing.assert_allclose(exp.values, oracle(f, X, background), atol=1e-9, rtol=0)
    np.testing.assert_allclose(exp.std_errors, 0.0, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3, 5])
def test_permutation_budget_covering_every_order_is_exact(d: int) -> None:
    f = random_mlp(d, seed=d)
    r = np.random.default_rng(d)
    X, background = r.normal(size=(3, d)), r.normal(size=(4, d))
    exp = xaudit.explain(f, X, method="shap.permutation", background=background, seed=0,
                         n_samples=factorial(d) * (d - 1))
    np.testing.assert_allclose(exp.values, oracle(f, X, background), atol=1e-10, rtol=0)
    np.testing.assert_array_equal(exp.std_errors, 0.0)


@pytest.mark.parametrize("method", SAMPLERS)
def test_same_seed_same_output(method: str) -> None:
    d = 9
    f = random_mlp(d, seed=9)
    r = np.random.default_rng(9)
    X, background = r.normal(size=(3, d)), r.normal(size=(7, d))
    runs = [xaudit.explain(f, X, method=method, background=background, seed=s, n_samples=200)
            for s in (4, 4, 5)]
    np.testing.assert_array_equal(runs[0].values, runs[1].values)
    np.testing.assert_array_equal(runs[0].std_errors, runs[1].std_errors)
    assert not np.array_equal(runs[0].values, runs[2].values)


@pytest.mark.parametrize("method", ["shap.exact", *SAMPLERS])
def test_kmeans_summary_recorded_and_exact_on_repeated_rows(method: str) -> None:
    d = 6
    f = random_mlp(d, seed=6)
    r = np.random.default_rng(6)
    X, distinct = r.normal(size=(2, d)), r.normal(size=(4, d)) * 3
    background = np.repeat(distinct, [3, 9, 5, 7], axis=0)[r.permutation(24)]
    exp = xaudit.explain(f, X, method=method, background=background, seed=0,
                         max_background=4, n_samples=2 ** d) if method != "shap.exact" else (
        xaudit.explain(f, X, method=method, background=background, seed=0, max_background=4))
    meta = exp.metadata["background"]
    assert meta["summarised"]
    assert meta["k"] == 4
    assert meta["background_rows"] == 24
    assert sorted(meta["cluster_sizes"]) == [3, 5, 7, 9]
    # four distinct rows: the weighted centres are the same game as the full background
    error = np.abs(exp.values - oracle(f, X, background))
    if method == "shap.permutation":  # sampled: within four standard errors
        assert exp.std_errors is not None
        assert np.all(error <= 4 * exp.std_errors + 1e-9)
    else:  # a budget covering every coalition, or exact
        assert np.all(error < 1e-9)


def test_kmeans_inertia_close_to_sklearn() -> None:
    from xaudit.plugins.shapley.kmeans import kmeans

    r = np.random.default_rng(11)
    data = np.concatenate([r.normal(loc, 1.0, size=(80, 5)) for loc in (-4, 0, 3, 8)])
    ours = kmeans(data, 10, np.random.default_rng(0))
    reference = KMeans(10, n_init=10, random_state=0).fit(data)
    assert ours.weights.sum() == len(data)
    assert ours.inertia <= 1.1 * reference.inertia_
    np.testing.assert_allclose(ours.centers[ours.labels].sum(0) / len(data), data.mean(0),
                               atol=1e-9)


def test_errors_a_user_can_cause() -> None:
    f = random_mlp(16)
    X = np.random.default_rng(0).normal(size=(2, 16))
    with pytest.raises(InputError, match="n_samples"):
        xaudit.explain(f, X, method="shap.kernel", background=X[::-1], n_samples=8)
    with pytest.raises(InputError, match="background"):
        xaudit.explain(f, X, method="shap.permutation")
    with pytest.raises(Exception, match="n_sample"):
        xaudit.explain(f, X, method="shap.permutation", background=X, n_sample=10)


@pytest.mark.parametrize("method", ["shap.exact", *SAMPLERS])
def test_model_calls_stay_within_max_batch(method: str) -> None:
    d = 6
    f = random_mlp(d, seed=1)
    sizes: list[int] = []

    def recorded(X: np.ndarray) -> np.ndarray:
        sizes.append(len(X))
        return f(X)

    r = np.random.default_rng(1)
    X, background = r.normal(size=(5, d)), r.normal(size=(7, d))
    exp = xaudit.explain(recorded, X, method=method, background=background, seed=0,
                         max_batch=50, **({} if method == "shap.exact" else {"n_samples": 40}))
    assert max(sizes) <= 50
    if method == "shap.exact":
        np.testing.assert_allclose(exp.values, oracle(f, X, background), atol=1e-10, rtol=0)
    else:
        np.testing.assert_allclose(exp.values.sum(1) + exp.base_values, f(X), atol=1e-10)


@pytest.mark.parametrize("method", ["shap.exact", *SAMPLERS])
def test_multidimensional_rows_one_feature_per_element(method: str) -> None:
    f = random_mlp(6, seed=1)

    def on_grid(X: np.ndarray) -> np.ndarray:
        return f(np.asarray(X).reshape(len(X), -1))

    r = np.random.default_rng(0)
    X, background = r.normal(size=(2, 2, 3)), r.normal(size=(4, 2, 3))
    params = {} if method == "shap.exact" else {"n_samples": 64}
    exp = xaudit.explain(on_grid, X, method=method, background=background, seed=0, **params)
    assert exp.values.shape == (2, 2, 3, 2)
    exact = oracle(f, X.reshape(2, 6), background.reshape(4, 6))
    error = np.abs(exp.values.reshape(2, 6, 2) - exact)
    if method == "shap.permutation":
        assert exp.std_errors is not None
        assert np.all(error <= 4 * exp.std_errors.reshape(2, 6, 2) + 1e-9)
    else:
        assert np.all(error < 1e-9)
