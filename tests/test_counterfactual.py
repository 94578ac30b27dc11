"""counterfactual: every returned point verified by the model itself, constraints respected.

Oracles: the scikit-learn estimator's own ``predict`` (not the adapted model) for validity, the
input rows for immutable features, the background's values for categorical ones, a plain numpy
MAD-scaled L1 for distances, and a brute-force single-feature replay for principal reasons.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import xaudit
from xaudit.errors import InputError
from xaudit.host import BUILTIN_PLUGINS, Host, create_host

MISSING = [m for m in BUILTIN_PLUGINS if importlib.util.find_spec(m) is None]
FAST = {"population": 80, "generations": 20}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # OpenMP start-up dominates the small batches here when other jobs share the CPUs
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def host() -> Host:
    return create_host(autoload=False, block=MISSING)


@pytest.fixture(scope="module")
def credit() -> tuple[np.ndarray, LogisticRegression]:
    X, y = make_classification(400, 5, n_informative=3, n_redundant=0, random_state=0)
    X[:, 4] = np.clip(np.round(np.abs(X[:, 4]) * 2), 0, 4)  # a categorical feature, codes 0..4
    return X, LogisticRegression().fit(X, y)


def mad_l1(a: np.ndarray, x: np.ndarray, reference: np.ndarray, categorical: list[int]) -> Any:
    mad = np.median(np.abs(reference - np.median(reference, axis=0)), axis=0)
    mad[mad == 0] = 1.0
    diff = np.abs(a - x) / mad
    diff[..., categorical] = (a[..., categorical] != x[..., categorical])
    return diff.sum(axis=-1)


def test_classification_counterfactuals_flip_the_class_under_constraints(
        host: Host, credit: Any) -> None:
    X, model = credit
    rows, bg = X[:8], X[100:300]
    e = xaudit.explain(model, rows, "counterfactual", background=bg, host=host, seed=3,
                       immutable=[0], categorical=[4], n_counterfactuals=3,
                       feature_ranges={"x2": (-1.0, 1.5)}, **FAST)
    found, valid = e.handoff.counterfactuals.rows, e.handoff.counterfactuals.valid
    assert found.shape == (8, 3, 5)
    # which rows can flip at all: a linear logit's extreme over the box is at its corners
    low, high = bg.min(axis=0), bg.max(axis=0)
    low[2], high[2] = -1.0, 1.5
    logit = model.decision_function(rows)
    w = model.coef_[0]
    sign = np.where(logit > 0, -1.0, 1.0)[:, None]  # the way each row must move
    reach = np.maximum(sign * w * (low - rows), sign * w * (high - rows))[:, 1:].sum(axis=1)
    margin = reach - np.abs(logit)
    assert (margin > 0.3).sum() >= 4
    assert (margin < 0).any()
    assert valid[margin > 0.3].any(axis=1).all()  # every clearly feasible row gets one
    assert not valid[margin < 0].any()  # none can exist there
    assert e.metadata["rows"][0]["search"] == "genetic"
    before = model.predict(rows)
    for i in np.flatnonzero(valid.any(axis=1)):
        chosen = found[i][valid[i]]
        assert (model.predict(chosen) != before[i]).all()  # 100% reach the target
        assert (chosen[:, 0] == rows[i, 0]).all()  # immutable
        assert set(chosen[:, 4]) <= set(np.unique(bg[:, 4]))  # categories seen in background
        moved = chosen[:, 2] != rows[i, 2]
        assert ((chosen[moved, 2] >= -1.0) & (chosen[moved, 2] <= 1.5)).all()  # range
        np.testing.assert_allclose(e.handoff.counterfactuals.distances[i, valid[i]],
                                   mad_l1(chosen, rows[i], bg, [4]), rtol=1e-12)
        assert len(np.unique(chosen, axis=0)) == len(chosen)  # distinct
        # values: the closest counterfactual's change
        closest = chosen[np.argmin(mad_l1(chosen, rows[i], bg, [4]))]
        np.testing.assert_allclose(e.values[i, :, 0], closest - rows[i])
        names = e.metadata["rows"][i]["changed_features"]
        assert names == [[f"x{j}" for j in np.flatnonzero(c != rows[i])] for c in chosen]


def test_sparsification_leaves_only_needed_changes(host: Host, credit: Any) -> None:
    X, model = credit
    rows, bg = X[:5], X[100:300]
    e = xaudit.explain(model, rows, "counterfactual", background=bg, host=host, **FAST)
    for i in range(5):
        for cf in e.handoff.counterfactuals.rows[i][e.handoff.counterfactuals.valid[i]]:
            target = model.predict(cf[None])[0]
            for j in np.flatnonzero(cf != rows[i]):  # reverting any one change loses the target
                undone = cf.copy()
                undone[j] = rows[i, j]
                assert model.predict(undone[None])[0] != target


@pytest.mark.parametrize("kind", ["logistic", "boosting"])
def test_principal_reasons_against_single_feature_replay(host: Host, credit: Any,
                                                         kind: str) -> None:
    X, model = credit
    if kind == "boosting":  # a credit-style GBM on the same data
        model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(
            X, model.predict(X))
    denied = X[model.predict(X) == 0][:4]
    e = xaudit.explain(model, denied, "counterfactual", background=X[100:300], host=host,
                       target_class=1, **FAST)
    margin0 = np.diff(model.predict_proba(denied), axis=1)[:, 0]  # p(1) - p(0)
    for i, reasons in enumerate(e.handoff.counterfactuals.reasons):
        assert 1 <= len(reasons) <= 4
        effects = []
        for reason in reasons:
            j = int(reason.feature[1:])
            moved = denied[i].copy()
            moved[j] = reason.after
            effect = np.diff(model.predict_proba(moved[None]), axis=1)[0, 0] - margin0[i]
            assert reason.effect == pytest.approx(effect, abs=1e-9)
            effects.append(effect)
        assert effects == sorted(effects, reverse=True)
        # the best-ranked change moves the applicant towards approval
        assert effects[0] > 0
    found = e.handoff.counterfactuals.rows[e.handoff.counterfactuals.valid]
    assert (model.predict(found) == 1).all()  # every counterfactual is approved


def test_multiclass_target_class_and_determinism(host: Host) -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    rows = X[[0, 1, 2]]  # setosa
    kwargs: dict[str, Any] = {"background": X, "host": host, "target_class": "2", "seed": 5,
                              "n_counterfactuals": 2, **FAST}
    e = xaudit.explain(model, rows, "counterfactual", **kwargs)
    valid = e.handoff.counterfactuals.valid
    assert valid[:, 0].all()
    assert (model.predict(e.handoff.counterfactuals.rows[valid]) == 2).all()
    again = xaudit.explain(model, rows, "counterfactual", **kwargs)
    np.testing.assert_array_equal(again.handoff.counterfactuals.rows,
                                  e.handoff.counterfactuals.rows)


def test_regression_target_range(host: Host) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    model = RandomForestRegressor(20, random_state=0).fit(X, X @ [2.0, 1.0, 0.0, -1.0])
    rows = X[np.abs(model.predict(X)) < 0.5][:4]
    e = xaudit.explain(model, rows, "counterfactual", background=X, host=host,
                       target_range=(2.0, 3.0), immutable=["x3"], **FAST)
    valid = e.handoff.counterfactuals.valid
    assert valid.any(axis=1).all()
    reached = model.predict(e.handoff.counterfactuals.rows[valid])
    assert ((reached >= 2.0) & (reached <= 3.0)).all()
    assert (e.handoff.counterfactuals.rows[valid][:, 3] == np.repeat(rows[:, 3],
                                                                   valid.sum(axis=1))).all()
    with pytest.raises(InputError, match="target_range"):
        xaudit.explain(model, rows, "counterfactual", background=X, host=host)


def test_nothing_mutable_returns_nothing(host: Host, credit: Any) -> None:
    X, model = credit
    e = xaudit.explain(model, X[:2], "counterfactual", background=X, host=host,
                       immutable=[0, 1, 2, 3, 4], **FAST)
    assert not e.handoff.counterfactuals.valid.any()
    assert not e.values.any()
    assert np.isnan(e.handoff.counterfactuals.distances).all()


def credit_net(X: np.ndarray, y: np.ndarray) -> Any:
    """A small MLP classifier (two logits) trained here on the credit-like data."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 16), torch.nn.Tanh(),
                              torch.nn.Linear(16, 2))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.03)
    inputs = torch.as_tensor(X, dtype=torch.float32)
    labels = torch.as_tensor(y, dtype=torch.long)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), labels).backward()
        optimizer.step()
    return net.eval()


@pytest.mark.slow
@pytest.mark.parametrize("search", ["gradient", "genetic"])
def test_torch_model_gradient_and_genetic_routes(host: Host, search: str) -> None:
    torch = pytest.importorskip("torch")
    X, y = make_classification(400, 5, n_informative=3, n_redundant=0, random_state=0)
    X[:, 4] = np.clip(np.round(np.abs(X[:, 4]) * 2), 0, 4)
    net = credit_net(X, y)
    model = xaudit.adapt(net, feature_shape=[5], device="cpu", host=host)
    rows, bg = X[:6], X[100:300]

    def label(a: np.ndarray) -> np.ndarray:  # the oracle: the torch module itself
        with torch.no_grad():
            return net(torch.as_tensor(a, dtype=torch.float32)).argmax(dim=1).numpy()

    e = xaudit.explain(model, rows, "counterfactual", background=bg, host=host, seed=2,
                       search=search, immutable=["x0"], categorical=["x4"],
                       n_counterfactuals=2, steps=100, **FAST)
    found, valid = e.handoff.counterfactuals.rows, e.handoff.counterfactuals.valid
    assert valid.any(axis=1).sum() >= 4
    assert {r["search"] for r in e.metadata["rows"] if r["found"]} == {search}
    for i in np.flatnonzero(valid.any(axis=1)):
        chosen = found[i][valid[i]]
        assert (label(chosen) != label(rows[i:i + 1])[0]).all()  # 100% reach the target
        assert (chosen[:, 0] == rows[i, 0]).all()
        assert set(chosen[:, 4]) <= set(np.unique(bg[:, 4]))
        assert ((chosen >= bg.min(axis=0)) & (chosen <= bg.max(axis=0))).all()
        np.testing.assert_allclose(e.handoff.counterfactuals.distances[i, valid[i]],
                                   mad_l1(chosen, rows[i], bg, [4]), rtol=1e-12)
