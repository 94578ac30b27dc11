"""Seeds derived from the suite seed, so every stochastic step is reproducible and reported."""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(suite_seed: int, *path: str) -> int:
    """A 32-bit seed for the step named by ``path`` (e.g. ``("explainers", "kernel")``).

    Independent of the order in which steps run: adding an explainer to a suite does not change
    the numbers of the others.
    """
    text = ":".join([str(suite_seed), *path]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "little")


def rng_for(seed: int) -> np.random.Generator:
    """The generator every stochastic step draws from."""
    return np.random.default_rng(seed)


def chunk_rng(seed: int, start: int, stop: int) -> np.random.Generator:
    """The generator of the chunk of rows ``start:stop`` of a step seeded with ``seed``.

    A child of ``seed``'s :class:`numpy.random.SeedSequence` keyed by the chunk's row range
    (``spawn_key=(start, stop)``), so its stream depends on which rows the chunk holds and on
    nothing else: not on the worker that runs it nor on the order chunks finish in. Different
    row ranges get statistically independent streams (O'Neill, PCG, 2014; NumPy's
    ``SeedSequence`` design).
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(start, stop)))
