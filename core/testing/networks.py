"""Tiny torch networks behind the conformance kit's gradient, image and token fixtures.

Imported by :mod:`xaudit.testing.fixtures` only when one of those fixtures is built, so the
kit itself imports no framework. Every network uses smooth activations (``tanh``), so methods
that are complete only in the limit of their quadrature (integrated gradients) are complete to
rounding on them, and only operations DeepLIFT has rules for, so ``deeplift`` and
``shap.deep`` run on the tabular and image ones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TabularNet(nn.Module):
    """Four features -> six hidden units (``hidden``, ``act``) -> three outputs (``out``)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, 6)
        self.act = nn.Tanh()
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 4)`` rows -> ``(n, 3)`` outputs."""
        outputs: torch.Tensor = self.out(self.act(self.hidden(x)))
        return outputs


class PositionMixing(nn.Module):
    """Attention whose weights are learned per position, not computed from the input.

    A Synthesizer head (Tay et al. 2021, "Synthesizer: Rethinking Self-Attention in Transformer
    Models", ICML): ``softmax(logits)`` ``(heads, s, s)`` mixes the projected tokens. It returns
    ``(context, weights)`` with weights ``(n, heads, s, s)``, as attention modules do, while the
    mixing stays a product with a constant (DeepLIFT's linear rule).
    """

    def __init__(self, tokens: int, width: int, heads: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.randn(heads, tokens, tokens))
        self.value = nn.Linear(width, width)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(n, s, d)`` tokens -> ``(n, s, d)`` context and ``(n, heads, s, s)`` weights."""
        n, s, d = x.shape
        weights = torch.softmax(self.logits, dim=-1).expand(n, -1, -1, -1)
        values = self.value(x).view(n, s, self.heads, d // self.heads).transpose(1, 2)
        context = (weights @ values).transpose(1, 2).reshape(n, s, d)
        return context, weights


class ImageNet(nn.Module):
    """``(3, 8, 8)`` images -> convolution (``conv``) -> 4x4 patch tokens -> attention -> 3."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.Tanh()
        self.pool = nn.AvgPool2d(2)
        self.attention = PositionMixing(tokens=16, width=4, heads=2)
        self.out = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 3, 8, 8)`` rows -> ``(n, 3)`` outputs."""
        maps = self.pool(self.act(self.conv(x)))
        tokens = maps.flatten(2).transpose(1, 2)
        context, _ = self.attention(tokens)
        outputs: torch.Tensor = self.out((tokens + context).mean(dim=1))
        return outputs


class TokenNet(nn.Module):
    """Token ids ``(n, 6)`` -> embedding (``embedding``) -> self-attention -> two outputs."""

    def __init__(self, vocabulary: int = 12) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, 4)
        self.attention = nn.MultiheadAttention(4, 2, batch_first=True)
        self.out = nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``(n, s)`` ids -> ``(n, 2)`` outputs."""
        tokens = self.embedding(ids)
        context, _ = self.attention(tokens, tokens, tokens, need_weights=True,
                                    average_attn_weights=False)
        outputs: torch.Tensor = self.out((tokens + context).mean(dim=1))
        return outputs


def seeded(build: type[nn.Module], seed: int) -> Any:
    """``build()`` with weights drawn from ``seed``, in float64 and eval mode; the global torch
    random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().double().eval()
