"""Gradient methods on five architectures against Captum's best batch (issue 16, item 1).

Architectures (random weights, fixed torch seed; timing does not depend on training):

* ``mlp``: the 784-256-10 MLP of ``bench_gradients.py``, 128 rows;
* ``cnn``: the seeds' ``SimpleCNN`` (3x32x32), 16 images;
* ``bn-cnn``: a 1x28x28 CNN with BatchNorm, max-pool, avg-pool and a tanh head, 48 images,
  target 4 (the workload of issue 16);
* ``resnet``: a residual network of 9 convolutions (stem and four basic blocks) on 3x64x64,
  4 images;
* ``transformer``: a 2-layer transformer encoder over 16 token ids, explained through its
  embedding layer: Integrated Gradients by ``layer.integrated`` on the embedding against
  Captum's ``LayerIntegratedGradients``; GradientSHAP and saliency on the encoder that takes the
  embeddings as its input (the same gradients with respect to the embedding's output).

Methods: Integrated Gradients (50 Gauss-Legendre steps, zero baseline), GradientSHAP (50
samples, 20 background rows, no noise) and saliency (absolute gradients). Captum's time is its
best median over ``internal_batch_size`` in {unset, 128, 512, 2048} for IG (GradientShap and
Saliency take no internal batch: plain). Ours run with no ``max_batch``: the pass size is
learnt by the probe (``plugins/_support/pass_size.py``) on the first, untimed warm-up call,
whose time is printed apart (``1st s``, probe included).

Timing: every side is called once to warm up, then ``--rounds`` rounds (more where one call is
so short that they would take under a second: up to 400 for millisecond saliency calls) call
every side once in a shuffled order (paired, interleaved), and each side's median is kept, so
load changes on a shared machine hit both libraries alike. Torch runs on ``--threads`` threads
for both. Two clocks: the process's CPU time (``--clock cpu``, the default: on a machine shared
by many jobs a starved process's wall time is mostly waiting, up to 8x its CPU time here, and
threads waiting at each operation's barrier make that worse the more passes a side makes) and
wall time (``--clock wall``, the figure to quote from a quiet machine); the other clock's ratio
is printed too. ``err`` is the largest difference from Captum (unset batch) relative to
Captum's largest value; GradientSHAP's draws differ between the libraries, so its error is a
Monte Carlo gap (``mc``), not an exactness check.

``--scale K`` explains K times each architecture's rows: saliency is one forward and one
backward pass, milliseconds at the default sizes, where a call's fixed cost (validating the
input, resolving targets, checking the result, float64 values with names) is a visible share;
the sweep shows how that share falls as the work grows.

    .venv/bin/python benchmarks/bench_gradient_architectures.py [--quick] [--only TEXT] [--scale K]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from captum.attr import GradientShap, IntegratedGradients, LayerIntegratedGradients, Saliency
from torch import nn

import xaudit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from seed_models import SimpleCNN  # the seeds' CNN, shared with the tests

IG_BATCHES = (None, 128, 512, 2048)


class BatchNormCNN(nn.Module):
    """1x28x28: conv-BN-ReLU, max-pool, conv-BN-ReLU, avg-pool, a tanh hidden layer, 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2, self.norm2 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.hidden, self.out = nn.Linear(32 * 7 * 7, 64), nn.Linear(64, 10)

    def forward(self, x: Any) -> Any:
        x = nn.functional.max_pool2d(torch.relu(self.norm1(self.conv1(x))), 2)
        x = nn.functional.avg_pool2d(torch.relu(self.norm2(self.conv2(x))), 2)
        return self.out(torch.tanh(self.hidden(x.flatten(1))))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and an identity (or 1x1-free strided) shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(
            channels)
        self.conv2, self.norm2 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(
            channels)

    def forward(self, x: Any) -> Any:
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(x + self.norm2(self.conv2(y)))


class ResNet(nn.Module):
    """3x64x64: a strided stem convolution, four basic blocks (8 convolutions), pooled head."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(*[BasicBlock(channels) for _ in range(4)])
        self.head = nn.Linear(channels, 10)

    def forward(self, x: Any) -> Any:
        x = self.blocks(torch.relu(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


class Encoder(nn.Module):
    """A 2-layer transformer encoder over embedded tokens ``(L, D)``, mean-pooled, 4 logits."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(dim, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, 4)

    def forward(self, embedded: Any) -> Any:
        return self.head(self.encoder(embedded).mean(dim=1))


class TokenClassifier(nn.Module):
    """Token ids ``(L,)`` -> embedding -> :class:`Encoder`."""

    def __init__(self, vocab: int = 100, dim: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.encoder = Encoder(dim)

    def forward(self, ids: Any) -> Any:
        return self.encoder(self.embedding(ids))


def relative(ours: Any, ref: Any) -> float:
    """Largest |ours - ref| over the largest |ref|."""
    ref = np.asarray(ref.detach().numpy() if hasattr(ref, "detach") else ref, dtype=np.float64)
    return float(np.abs(np.asarray(ours, dtype=np.float64) - ref).max() / np.abs(ref).max())


def ours(model: Any, X: np.ndarray, method: str, target: int, **params: Any) -> Callable[[], Any]:
    """Our explanation of ``target`` (values without the outputs axis)."""
    return lambda: np.asarray(xaudit.explain(model, X, method=method, target=target,
                                             **params).values[..., 0])


Case = tuple[str, str, Callable[[], Any], dict[str, Callable[[], Any]], str]
"""(architecture, method, ours, Captum's sides by label, error label)."""


def image_cases(name: str, net: Any, X: np.ndarray, target: int,
                background: np.ndarray) -> list[Case]:
    """IG, GradientSHAP and saliency of ``net`` on ``X`` (inputs taken as they are)."""
    model = xaudit.adapt(net, device="cpu", feature_shape=list(X.shape[1:]))
    x, bg = torch.tensor(X), torch.tensor(background)
    ig, gs, sal = IntegratedGradients(net), GradientShap(net), Saliency(net)
    ig_sides = {f"ibs={b}": (lambda b=b: ig.attribute(x, target=target, n_steps=50,
                                                      internal_batch_size=b))
                for b in IG_BATCHES}
    return [
        (name, "IG", ours(model, X, "gradient.integrated", target, n_steps=50), ig_sides, "rel"),
        (name, "GradientSHAP", ours(model, X, "shap.gradient", target, n_samples=50,
                                    background=background),
         {"plain": lambda: gs.attribute(x, bg, target=target, n_samples=50)}, "mc"),
        (name, "saliency", ours(model, X, "gradient.saliency", target),
         {"plain": lambda: sal.attribute(x, target=target)}, "rel"),
    ]


def transformer_cases(scale: int) -> list[Case]:
    """IG through the embedding layer; GradientSHAP and saliency on the embedded input."""
    torch.manual_seed(3)
    net = TokenClassifier().eval()
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 100, size=(16 * scale, 16))
    ids_t = torch.tensor(ids)
    model = xaudit.adapt(net, device="cpu", feature_shape=[16])
    lig = LayerIntegratedGradients(net, net.embedding)
    ig_sides = {f"ibs={b}": (lambda b=b: lig.attribute(ids_t, torch.zeros_like(ids_t), target=1,
                                                       n_steps=50, internal_batch_size=b))
                for b in IG_BATCHES}
    with torch.no_grad():
        embedded = net.embedding(ids_t).numpy()
        background = net.embedding(torch.tensor(rng.integers(1, 100, size=(20, 16)))).numpy()
    cases = [("transformer", "IG (embedding)",
              ours(model, ids, "layer.integrated", 1, layer="embedding", n_steps=50,
                   sum_last=False), ig_sides, "rel")]
    return cases + [(arch, method, mine, sides, label) for arch, method, mine, sides, label
                    in image_cases("transformer", net.encoder, embedded, 1, background)[1:]]


def cases(scale: int = 1) -> list[Case]:
    """Every (architecture, method) pair, on ``scale`` times the rows named in the docstring."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    found = image_cases("mlp", mlp, rng.random((128 * scale, 784), dtype=np.float32), 0,
                        rng.random((20, 784), dtype=np.float32))
    torch.manual_seed(0)
    found += image_cases("cnn", SimpleCNN().eval(),
                         rng.random((16 * scale, 3, 32, 32), dtype=np.float32),
                         0, rng.random((20, 3, 32, 32), dtype=np.float32))
    torch.manual_seed(1)
    found += image_cases("bn-cnn", BatchNormCNN().eval(),
                         rng.random((48 * scale, 1, 28, 28), dtype=np.float32), 4,
                         rng.random((20, 1, 28, 28), dtype=np.float32))
    torch.manual_seed(2)
    found += image_cases("resnet", ResNet().eval(),
                         rng.random((4 * scale, 3, 64, 64), dtype=np.float32),
                         0, rng.random((20, 3, 64, 64), dtype=np.float32))
    return found + transformer_cases(scale)


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


MIN_SECONDS = 1.0
"""Each side is timed over at least this long (more rounds for millisecond calls, whose
medians over 7 rounds move by several percent between runs)."""


def measure(case: Case, rounds: int, rng: np.random.Generator, clock: str) -> dict[str, Any]:
    """Warm-up call of every side, then shuffled rounds (``rounds``, more where a call is
    too short to be timed over :data:`MIN_SECONDS`); medians and the error."""
    arch, method, mine, sides, label = case
    everyone = {"xaudit": mine, **sides}
    started = CLOCKS[clock]()
    results = {"xaudit": mine()}
    first = CLOCKS[clock]() - started
    results.update({side: fn() for side, fn in sides.items()})
    started = time.perf_counter()
    mine()
    rounds = max(rounds, min(400, int(MIN_SECONDS / max(time.perf_counter() - started, 1e-6))))
    times: dict[str, dict[str, list[float]]] = {c: {side: [] for side in everyone}
                                                for c in CLOCKS}
    for _ in range(rounds):
        for side in rng.permutation(list(everyone)):
            wall, cpu = time.perf_counter(), time.process_time()
            everyone[side]()
            times["wall"][side].append(time.perf_counter() - wall)
            times["cpu"][side].append(time.process_time() - cpu)
    medians = {c: {side: statistics.median(t) for side, t in by_side.items()}
               for c, by_side in times.items()}
    other = "wall" if clock == "cpu" else "cpu"
    best = min(sides, key=lambda side: medians[clock][side])
    best_other = min(medians[other][side] for side in sides)
    values = results[next(iter(sides))]
    return {"arch": arch, "method": method, "ours": medians[clock]["xaudit"], "first": first,
            "rounds": rounds,
            "captum": medians[clock][best], "best": best,
            "ratio": medians[clock]["xaudit"] / medians[clock][best],
            "other": medians[other]["xaudit"] / best_other,
            "error": relative(results["xaudit"], values), "label": label,
            "all": {side: round(medians[clock][side], 4) for side in sides}}


def main() -> None:
    """Measure every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", help="run only cases whose architecture or method has this")
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu")
    parser.add_argument("--scale", type=int, default=1,
                        help="explain this many times each architecture's rows (the fixed cost "
                             "of a call weighs less on larger work)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (3 if args.quick else 7)
    rng = np.random.default_rng(0)
    print(f"gradient methods vs Captum's best batch (torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of at least {rounds} interleaved rounds, "
          f"{args.clock} time, {args.scale}x the rows)")
    other = "wall" if args.clock == "cpu" else "cpu"
    header = (f"{'architecture':<12} {'method':<15} {'rounds':>6} {'xaudit s':>9} {'1st s':>7} "
              f"{'captum s':>9} {'ratio':>6} {other:>6}  {'captum best':<11} error")
    print(header)
    print("-" * len(header))
    for case in cases(args.scale):
        if args.only and args.only not in f"{case[0]} {case[1]}":
            continue
        row = measure(case, rounds, rng, args.clock)
        print(f"{row['arch']:<12} {row['method']:<15} {row['rounds']:>6} {row['ours']:>9.4f} "
              f"{row['first']:>7.3f} "
              f"{row['captum']:>9.4f} {row['ratio']:>6.2f} {row['other']:>6.2f}  {row['best']:<11} "
              f"{row['label']}={row['error']:.2g}  {row['all']}", flush=True)


if __name__ == "__main__":
    main()
