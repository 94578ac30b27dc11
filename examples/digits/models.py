"""A small convolutional network for scikit-learn's 8x8 digits, trained in a few seconds."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from xaudit import Dataset


class DigitsCNN(nn.Module):
    """Two convolution blocks and a linear head: (n, 1, 8, 8) grey images (0-16) -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x / 16.0))


def train_cnn(data: Dataset, epochs: int = 30, seed: int = 0) -> nn.Module:
    """Adam on the suite's training rows; deterministic per seed."""
    torch.manual_seed(seed)
    X = torch.as_tensor(np.asarray(data.X_train, dtype=np.float32))
    y = torch.as_tensor(np.asarray(data.y_train, dtype=np.int64))
    net = DigitsCNN()
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(X.shape[0], generator=order).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(net(X[batch]), y[batch]).backward()
            optimiser.step()
    return net.eval()
