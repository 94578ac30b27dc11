"""Models for the fingerprint tests, built the same way in this process and in a fresh one.

Each builder is deterministic given its arguments, so two calls build equal fitted states.
``print_fingerprints`` prints the fingerprints of the cases in ``CASES`` as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import RandomForestRegressor, StackingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and two different targets."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    return X, X[:, 0] + 0.5 * X[:, 1], np.sin(X[:, 2]) - X[:, 3]


def target_forest(target: int) -> TransformedTargetRegressor:
    """The issue's case: TransformedTargetRegressor(Pipeline(RandomForest)) on one target."""
    X, *targets = data()
    forest = RandomForestRegressor(n_estimators=4, max_depth=4, random_state=0)
    model = TransformedTargetRegressor(Pipeline([("scale", StandardScaler()), ("rf", forest)]),
                                       func=np.log1p, inverse_func=np.expm1)
    return model.fit(X, np.abs(targets[target]))


def stacking(target: int) -> StackingRegressor:
    """A stacking meta-estimator over a pipeline and a tree."""
    X, *targets = data()
    model = StackingRegressor(
        [("ridge", Pipeline([("scale", StandardScaler()), ("ridge", Ridge())])),
         ("tree", DecisionTreeRegressor(max_depth=3, random_state=0))],
        final_estimator=Ridge(alpha=2.0), cv=3)
    return model.fit(X, targets[target])


def nested_pipeline(levels: int, target: int) -> Pipeline:
    """``levels`` pipelines inside each other around a fitted tree."""
    X, *targets = data()
    model: Any = DecisionTreeRegressor(max_depth=3, random_state=0)
    for level in range(levels):
        model = Pipeline([(f"scale{level}", StandardScaler()), (f"inner{level}", model)])
    return model.fit(X, targets[target])


class TorchWrapper:
    """A user's wrapper holding a torch module: ``predict`` feeds it float32 rows."""

    def __init__(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                       torch.nn.Linear(8, 1))
        self.scale = 1.0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.net(torch.as_tensor(X, dtype=torch.float32))
        return np.asarray(out.numpy(), dtype=np.float64) * self.scale


CASES: dict[str, Callable[[], object]] = {
    "target_forest": lambda: target_forest(0),
    "stacking": lambda: stacking(0),
    "nested_pipeline": lambda: nested_pipeline(40, 0),
    "torch_wrapper": lambda: TorchWrapper(0),
}


def print_fingerprints() -> None:
    """Print the fingerprint of every case as JSON (run in a fresh interpreter by the tests)."""
    from xaudit.adapters.fingerprint import state_sha256

    print(json.dumps({name: state_sha256(build()) for name, build in CASES.items()}))
