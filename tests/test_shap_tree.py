"""``shap.tree`` against shap 0.51's TreeExplainer and the models' own raw outputs.

Oracles: ``shap.TreeExplainer`` (path-dependent and interventional SHAP values, expected values,
interaction values) and each library's raw prediction (``predict``, ``predict_proba``,
``decision_function``, ``output_margin=True``, ``raw_score=True``) for local accuracy. shap
refuses multiclass GradientBoostingClassifier; there the oracle is the learning-rate-weighted sum
of shap's values on each of the model's regression trees ``estimators_[:, k]`` plus the init
estimator's raw prediction.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import shap
import xgboost as xgb
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import xaudit
from xaudit.errors import InputError

REL = 1e-6
N_FEATURES = 6


def _data(task: str, nan: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    if task == "regression":
        X, y = make_regression(400, N_FEATURES, n_informative=4, noise=5.0, random_state=seed)
    else:
        X, y = make_classification(400, N_FEATURES, n_informative=4, n_redundant=1,
                                   n_classes=2 if task == "binary" else 3, random_state=seed)
    if nan:
        rng = np.random.default_rng(seed)
        X = X.copy()
        X[rng.random(X.shape) < 0.1] = np.nan
    return X, y


def _close(ours: np.ndarray, ref: np.ndarray, rel: float = REL) -> None:
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape
    scale = max(float(np.max(np.abs(ref))), 1e-12)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=rel * scale)


def _raw(model: Any, X: np.ndarray) -> np.ndarray:
    """The library's own raw output, ``(n, K)``: the oracle of local accuracy."""
    if isinstance(model, xgb.XGBModel):
        out = model.predict(X, output_margin=True)
    elif isinstance(model, lgb.LGBMModel):
        out = model.predict(X, raw_score=True)
    elif hasattr(model, "decision_function"):
        out = model.decision_function(X)
    elif hasattr(model, "predict_proba"):
        out = model.predict_proba(X)
    else:
        out = model.predict(X)
    out = np.asarray(out, dtype=np.float64)
    return out[:, None] if out.ndim == 1 else out


def _shap3(values: Any) -> np.ndarray:
    """shap's values as ``(n, d, K)``."""
    arr = np.asarray(values, dtype=np.float64)
    return arr[..., None] if arr.ndim == 2 else arr


def _margin_model(model: Any) -> Any:
    """The model adapted so that its outputs are the trees' raw outputs."""
    if isinstance(model, xgb.XGBModel | lgb.LGBMModel):
        return xaudit.adapt(model, output="margin") if hasattr(model, "classes_") else model
    if hasattr(model, "decision_function"):
        return xaudit.adapt(model, output="decision_function")
    return model


def _fit(name: str, nan: bool = False) -> tuple[Any, np.ndarray]:
    """A small fitted model and its held-out rows."""
    task = ("regression" if name.endswith("reg") else "multi" if name.endswith("multi")
            else "binary")
    X, y = _data(task, nan=nan)
    small = {"random_state": 0}
    models: dict[str, Any] = {
        "dt_reg": DecisionTreeRegressor(max_depth=6, **small),
        "dt_clf_multi": DecisionTreeClassifier(max_depth=5, **small),
        "rf_reg": RandomForestRegressor(15, max_depth=6, **small),
        "rf_clf": RandomForestClassifier(15, max_depth=6, **small),
        "rf_clf_multi": RandomForestClassifier(10, max_depth=5, **small),
        "et_reg": ExtraTreesRegressor(15, max_depth=6, **small),
        "et_clf": ExtraTreesClassifier(15, max_depth=6, **small),
        "gb_reg": GradientBoostingRegressor(n_estimators=30, max_depth=3, **small),
        "gb_clf": GradientBoostingClassifier(n_estimators=30, max_depth=3, **small),
        "gb_clf_multi": GradientBoostingClassifier(n_estimators=15, max_depth=3, **small),
        "hgb_reg": HistGradientBoostingRegressor(max_iter=20, max_leaf_nodes=15, **small),
        "hgb_clf": HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=15, **small),
        "xgb_reg": xgb.XGBRegressor(n_estimators=20, max_depth=4, **small),
        "xgb_clf": xgb.XGBClassifier(n_estimators=20, max_depth=4, **small),
        "xgb_clf_multi": xgb.XGBClassifier(n_estimators=10, max_depth=3, **small),
        "lgb_reg": lgb.LGBMRegressor(n_estimators=20, num_leaves=15, verbose=-1, **small),
        "lgb_clf": lgb.LGBMClassifier(n_estimators=20, num_leaves=15, verbose=-1, **small),
    }
    model = models[name].fit(X[:300], y[:300])
    return model, X[300:340]


def _shap_oracle(model: Any, X: np.ndarray, background: np.ndarray | None,
                 interactions: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """shap's values ``(n, d, K)`` and expected value ``(K,)`` of the trees' raw output."""
    if isinstance(model, GradientBoostingClassifier) and model.n_classes_ > 2:
        return _gb_multiclass_oracle(model, X, background)
    if background is None:
        explainer = shap.TreeExplainer(model)
    else:
        explainer = shap.TreeExplainer(model, background, feature_perturbation="interventional")
    if interactions:
        values = np.asarray(explainer.shap_interaction_values(X), dtype=np.float64)
        values = values[..., None] if values.ndim == 3 else values
    else:
        values = _shap3(explainer.shap_values(X, check_additivity=False))
    return values, np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))


def _gb_multiclass_oracle(model: Any, X: np.ndarray,
                          background: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Learning-rate-weighted sum of shap's values on each regression tree, plus the init."""
    k = model.estimators_.shape[1]
    values = np.zeros((X.shape[0], X.shape[1], k))
    base = np.zeros(k)
    for c in range(k):
        expected = 0.0
        for tree in model.estimators_[:, c]:
            if background is None:
                explainer = shap.TreeExplainer(tree)
            else:
                explainer = shap.TreeExplainer(tree, background,
                                               feature_perturbation="interventional")
            values[:, :, c] += model.learning_rate * np.asarray(
                explainer.shap_values(X, check_additivity=False))
            expected += model.learning_rate * float(np.ravel(explainer.expected_value)[0])
        base[c] = expected
    # the init estimator's raw prediction is constant (the prior): the raw output minus the trees
    trees = np.stack([sum(model.learning_rate * t.predict(X[:1]) for t in model.estimators_[:, c])
                      for c in range(k)], axis=-1)
    init = _raw(model, X[:1])[0] - trees[0]
    return values, base + init


MODELS = ["dt_reg", "dt_clf_multi", "rf_reg", "rf_clf", "rf_clf_multi", "et_reg", "et_clf",
          "gb_reg", "gb_clf", "gb_clf_multi", "hgb_reg", "hgb_clf", "xgb_reg", "xgb_clf",
          "xgb_clf_multi", "lgb_reg", "lgb_clf"]
NAN_MODELS = {"hgb_reg", "hgb_clf", "xgb_reg", "xgb_clf", "lgb_reg", "lgb_clf"}


@pytest.mark.parametrize(("mode", "backend"), [("tree_path_dependent", "numba"),
                                               ("tree_path_dependent", "numpy"),
                                               ("interventional", "auto")])
@pytest.mark.parametrize("name", MODELS)
def test_values_equal_shap_and_sum_to_raw_output(name: str, mode: str, backend: str) -> None:
    model, X = _fit(name, nan=name in NAN_MODELS)
    background = None
    if mode == "interventional":
        Xb, _ = _data("regression" if name.endswith("reg") else "binary",
                      nan=name in NAN_MODELS, seed=1)
        background = Xb[:25]
    adapted = _margin_model(model)
    explanation = xaudit.explain(adapted, X, method="shap.tree", background=background,
                                 feature_perturbation=mode, backend=backend)
    if backend != "auto":
        assert explanation.metadata["backend"] == backend
    ref, ref_base = _shap_oracle(model, X, background)
    _close(explanation.values, ref)
    if background is not None:
        # E_b[raw(b)] by definition; shap 0.51's expected_value for multiclass XGBoost under the
        # interventional mode misses it (its values plus expected_value miss the margin)
        ref_base = _raw(model, background).mean(axis=0)
    _close(explanation.base_values, np.broadcast_to(ref_base, explanation.base_values.shape))
    # local accuracy against the library's own raw prediction
    raw = _raw(model, X)
    total = explanation.values.sum(axis=1) + explanation.base_values
    np.testing.assert_allclose(total, raw, rtol=1e-6, atol=1e-6 * np.abs(raw).max())


@pytest.mark.parametrize("name", ["gb_clf", "xgb_clf", "lgb_clf"])
def test_binary_classifier_probability_outputs_share_the_margin(name: str) -> None:
    """A binary boosting model adapted to two probabilities: class 1 is explained by the margin
    (as shap does), class 0 by its negation."""
    model, X = _fit(name)
    explanation = xaudit.explain(model, X, method="shap.tree")
    ref, base = _shap_oracle(model, X, None)
    _close(explanation.values[..., 1:], ref)
    _close(explanation.values[..., :1], -ref)
    _close(explanation.base_values[:, 1], np.full(X.shape[0], base[0]))


def test_interventional_probability_output_equals_shap() -> None:
    model, X = _fit("gb_clf")
    Xb, _ = _data("binary", seed=1)
    explanation = xaudit.explain(_margin_model(model), X, method="shap.tree",
                                 background=Xb[:25], model_output="probability")
    explainer = shap.TreeExplainer(model, Xb[:25], feature_perturbation="interventional",
                                   model_output="probability")
    _close(explanation.values, _shap3(explainer.shap_values(X)))
    p = model.predict_proba(X)[:, 1]
    total = explanation.values.sum(axis=1)[:, 0] + explanation.base_values[:, 0]
    np.testing.assert_allclose(total, p, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["rf_reg", "gb_clf", "xgb_clf_multi"])
def test_interaction_values_equal_shap(name: str) -> None:
    model, X = _fit(name, nan=name in NAN_MODELS)
    X = X[:10]
    explanation = xaudit.explain(_margin_model(model), X, method="shap.tree",
                                 interactions=True)
    ref, _ = _shap_oracle(model, X, None, interactions=True)
    inter = explanation.extras["interactions"]
    _close(inter, ref)
    _close(inter.sum(axis=2), explanation.values)  # rows of the matrix sum to the SHAP values


@pytest.mark.parametrize("mode", ["tree_path_dependent", "interventional"])
def test_chunk_size_gives_identical_results(mode: str) -> None:
    model, X = _fit("rf_clf_multi")
    background = X[:15] if mode == "interventional" else None
    whole = xaudit.explain(model, X, method="shap.tree", background=background,
                           feature_perturbation=mode, chunk_size=4096)
    chunked = xaudit.explain(model, X, method="shap.tree", background=background,
                             feature_perturbation=mode, chunk_size=7)
    np.testing.assert_array_equal(whole.values, chunked.values)
    np.testing.assert_array_equal(whole.base_values, chunked.base_values)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("name", ["rf_clf_multi", "gb_clf_multi", "hgb_reg", "xgb_reg"])
def test_torch_path_equals_numba_path(name: str, device: str) -> None:
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model, X = _fit(name, nan=name in NAN_MODELS)
    adapted = _margin_model(model)
    numba_values = xaudit.explain(adapted, X, method="shap.tree", backend="numba")
    torch_values = xaudit.explain(adapted, X, method="shap.tree", backend="torch",
                                  device=device, chunk_size=16)
    assert torch_values.metadata["backend"] == "torch"
    assert torch_values.metadata["device"] == device
    _close(torch_values.values, numba_values.values, rel=1e-9)
    _close(torch_values.base_values, numba_values.base_values, rel=1e-12)


def test_refusals_name_what_to_change() -> None:
    model, X = _fit("rf_reg")
    with pytest.raises(InputError, match="background"):
        xaudit.explain(model, X, method="shap.tree", feature_perturbation="interventional")
    with pytest.raises(InputError, match="path-dependent"):
        xaudit.explain(model, X, method="shap.tree", background=X, interactions=True)
    with pytest.raises(InputError, match="probability"):
        xaudit.explain(model, X, method="shap.tree", model_output="probability")
    log_odds = xaudit.adapt(_fit("rf_clf")[0], output="log_odds")
    with pytest.raises(InputError, match="outputs"):
        xaudit.explain(log_odds, X, method="shap.tree")


@pytest.mark.slow
def test_larger_forest_and_deep_boosting_equal_shap() -> None:
    """Deeper trees (more quadrature nodes, repeated features on long paths)."""
    X, y = make_regression(3000, 12, n_informative=8, noise=1.0, random_state=3)
    forest = RandomForestRegressor(40, max_depth=14, random_state=0).fit(X[:2500], y[:2500])
    boosting = xgb.XGBRegressor(n_estimators=60, max_depth=9).fit(X[:2500], y[:2500])
    rows = X[2500:2700]
    for model in (forest, boosting):
        explanation = xaudit.explain(model, rows, method="shap.tree")
        ref, _ = _shap_oracle(model, rows, None)
        _close(explanation.values, ref)
        dense = xaudit.explain(model, rows[:20], method="shap.tree", backend="numpy")
        _close(dense.values, ref[:20])
        explanation = xaudit.explain(model, rows[:40], method="shap.tree", background=X[:50])
        ref, _ = _shap_oracle(model, rows[:40], X[:50])
        _close(explanation.values, ref)


@pytest.mark.parametrize("name", ["rf_clf_multi", "gb_clf_multi", "lgb_clf"])
def test_interventional_leaf_tables_equal_pair_walk(name: str) -> None:
    """The two interventional kernels (per-leaf background tables, per-pair walks) agree."""
    from xaudit.plugins.shapley import tree_interventional as ti
    from xaudit.plugins.shapley.tree_flat import flatten

    model, X = _fit(name, nan=name in NAN_MODELS)
    ensemble = xaudit.adapt(model).tree_ensemble()  # type: ignore[attr-defined]
    flat = flatten(ensemble)
    rows = ensemble.cast(X)
    background = ti.directions(flat, rows[::2])
    tables = ti.shap_values(flat, rows, background, None, ti.plan(flat, 1, 1, method="tables"))
    pairs = ti.shap_values(flat, rows, background, None, ti.plan(flat, 1, 1, method="pairs"))
    _close(tables, pairs, rel=1e-12)


def test_device_auto_does_not_import_torch_to_ask_for_a_gpu(tmp_path: Path) -> None:
    """A fresh process explaining a tree ensemble never imports torch (issue 16's cold start):
    ``device: auto`` asks for CUDA only when torch is already imported."""
    code = (
        "import sys\n"
        "from sklearn.datasets import make_regression\n"
        "from sklearn.ensemble import GradientBoostingRegressor\n"
        "import xaudit\n"
        "X, y = make_regression(n_samples=60, n_features=5, random_state=0)\n"
        "m = GradientBoostingRegressor(n_estimators=5, random_state=0).fit(X, y)\n"
        "e = xaudit.explain(m, X[:4], method='shap.tree')\n"
        "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False", done.stdout


@pytest.mark.parametrize("mode", ["interventional", "tree_path_dependent"])
def test_values_do_not_depend_on_numba_threads(mode: str) -> None:
    # a Dask worker runs the kernels on one thread, this process on all cores: the values
    # must be bit-identical (the interventional table sums used to be grouped by threads)
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs numba to have at least 2 threads")
    X, y = make_regression(n_samples=300, n_features=6, random_state=3)
    forest = RandomForestRegressor(n_estimators=24, max_depth=5, random_state=0).fit(X, y)
    model = xaudit.adapt(forest)

    def values() -> np.ndarray:
        return xaudit.explain(model, X[:64], "shap.tree", background=X[200:240],
                              feature_perturbation=mode, backend="numba").values

    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    all_threads = values()
    numba.set_num_threads(1)
    try:
        one_thread = values()
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert np.array_equal(all_threads, one_thread)


def test_auto_backend_skips_numba_for_small_workloads(tmp_path: Path) -> None:
    """Issue 16's cold start: a fresh process that creates the host, imports the tree plugin and
    explains a few rows of a small ensemble never imports numba (``backend: auto`` picks the
    numpy form); a large workload, or ``backend: numba``, does."""
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from sklearn.datasets import make_regression\n"
        "from sklearn.ensemble import GradientBoostingRegressor\n"
        "import xaudit\n"
        "import xaudit.plugins.shapley.tree\n"
        "xaudit.create_host()\n"
        "X, y = make_regression(n_samples=200, n_features=8, random_state=0)\n"
        "m = GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0).fit(X, y)\n"
        "e = xaudit.explain(m, X[:40], method='shap.tree')\n"
        "print(e.metadata['backend'], 'numba' in sys.modules)\n"
        "big = np.repeat(X, 200, axis=0)\n"
        "e = xaudit.explain(m, big, method='shap.tree')\n"
        "print(e.metadata['backend'], 'numba' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["numpy", "False", "numba", "True"], done.stdout


def test_numpy_backend_refuses_interventional_and_interaction_values() -> None:
    model, X = _fit("rf_reg")
    with pytest.raises(InputError, match=r"backend=.numpy. computes path-dependent"):
        xaudit.explain(model, X, method="shap.tree", background=X, backend="numpy")
    with pytest.raises(InputError, match=r"backend=.numpy. computes path-dependent"):
        xaudit.explain(model, X, method="shap.tree", interactions=True, backend="numpy")
