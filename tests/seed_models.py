"""The seeds' two torch models (../shared/seeds), shared by the tests and the benchmarks.

``SimpleNN``: the tabular MLP 10-64-32-2. ``SimpleCNN``: the 3x32x32 image CNN with three conv
blocks (functional ReLUs, one max-pool module used three times), split at ``conv3`` into
:meth:`SimpleCNN.features` and :meth:`SimpleCNN.head` for tests that need the layer's output.
Import after ``pytest.importorskip("torch")``. Annotated with ``torch.Tensor`` so that
TorchScript can compile them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SimpleNN(nn.Module):
    """The seeds' tabular MLP, ``input_dim``-64-32-2."""

    def __init__(self, input_dim: int = 10) -> None:
        super().__init__()
        self.network = nn.Sequential(nn.Linear(input_dim, 64), nn.ReLU(), nn.Linear(64, 32),
                                     nn.ReLU(), nn.Linear(32, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class SimpleCNN(nn.Module):
    """The seeds' CNN for 3x32x32 images: three conv blocks, two dense layers, 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(128 * 4 * 4, 256)
        self.fc2 = nn.Linear(256, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything up to ``conv3``'s output."""
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.conv3(x)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Everything after ``conv3``."""
        x = self.pool(F.relu(x))
        x = x.view(-1, 128 * 4 * 4)
        return self.fc2(F.relu(self.fc1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
