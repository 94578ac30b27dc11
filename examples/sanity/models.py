"""Models for the sanity-check example and the discrimination test: trained in seconds on CPU.

- :func:`tabular_data`: 6 features, the first three drive the target (``3 x0 - 2 x1 + x2^2``),
  the last three are irrelevant and centred at 4 (so "the input itself" ranks them first).
- :func:`tree_model` (scikit-learn gradient boosting), :func:`mlp_model` (a torch MLP) on it;
- :func:`cnn_model`: a small torch CNN on scikit-learn's 8x8 digits, rows shaped (1, 8, 8).
- :func:`factory`: the suite's model factory (the gradient-boosted trees).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SHIFT = np.array([0.0, 0.0, 0.0, 4.0, 4.0, 4.0])


def tabular_data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows and targets of the tabular task."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)) + SHIFT
    y = 3 * X[:, 0] - 2 * X[:, 1] + X[:, 2] ** 2 + 0.1 * rng.normal(size=n)
    return X, y


def tree_model(X: np.ndarray, y: np.ndarray) -> Any:
    """Gradient-boosted regression trees."""
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=0).fit(X, y)


def factory(data: Any) -> Any:
    """The suite's model: trees trained on the suite's training rows."""
    return tree_model(data.X_train, data.y_train)


def _fit(module: Any, X: np.ndarray, y: np.ndarray, loss: Any, epochs: int, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: threads only contend (8x slower on 2 busy cores)
    try:
        for _ in range(epochs):
            for idx in torch.randperm(len(xt)).split(64):
                opt.zero_grad()
                loss(module(xt[idx]), yt[idx]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return module.eval()


def mlp_model(X: np.ndarray, y: np.ndarray, seed: int = 0) -> Any:
    """A 6-32-32-1 ReLU network trained on standardised targets."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                        nn.Linear(32, 1))
    target = ((y - y.mean()) / y.std()).astype(np.float32)[:, None]
    return _fit(net, X, target, nn.functional.mse_loss, 60, seed)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (n, 1, 8, 8) float32 images in [0, 1] and labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images[:, None] / 16.0).astype(np.float32), data.target.astype(np.int64)


def cnn_model(X: np.ndarray, y: np.ndarray, seed: int = 0) -> Any:
    """conv(1->8) - ReLU - conv(8->16) - ReLU - pool - linear(10)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(16 * 16, 10))
    return _fit(net, X, y, nn.functional.cross_entropy, 8, seed)
