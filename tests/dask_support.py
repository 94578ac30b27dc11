"""Test explainers for the executor tests: one whose chunk kills its own worker process once,
one whose chunk holding a chosen row always raises, one that reports how many threads a numba
parallel loop ran on. Importable by Dask's worker processes
(they inherit the test process's ``sys.path``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from xaudit.explanation import Attribution
from xaudit.hookspecs import hookimpl
from xaudit.plugin import Explainer, PluginParams


class MarkerParams(PluginParams):
    marker: str
    """A file: its absence makes the chunk act (then the file is written)."""
    row_value: float = np.inf
    """``fails``: a chunk whose first feature holds this value raises."""


def noisy_identity(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's features plus the chunk stream's noise: numbers that show the stream used."""
    noise = rng.standard_normal(X.shape)
    return np.repeat((X + noise)[..., None], k, axis=-1)


class DiesOnce(Explainer):
    """The first chunk to run while ``marker`` is missing ends its process (os._exit)."""

    name = "test.dies_once"
    Params = MarkerParams
    row_parallel = True
    stochastic = True

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        marker = Path(self.params.marker)  # type: ignore[attr-defined]
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(17)  # the worker process dies mid-run, as a killed machine would
        return Attribution(noisy_identity(X, targets.n_slots, rng))


class Fails(Explainer):
    """A chunk holding a row whose first feature is ``row_value`` raises, and appends a line
    to ``marker`` for each attempt."""

    name = "test.fails"
    Params = MarkerParams
    row_parallel = True

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        params: Any = self.params
        if (X[:, 0] == params.row_value).any():
            with open(params.marker, "a") as attempts:
                attempts.write("attempt\n")
            raise ValueError(f"row with value {params.row_value} cannot be explained")
        return Attribution(noisy_identity(X, targets.n_slots, rng))


def numba_threads_used(iterations: int = 10_000) -> int:
    """Distinct threads that ran the iterations of a numba ``prange`` loop (imports numba)."""
    import numba

    @numba.njit(parallel=True)
    def thread_of_each(n: int) -> np.ndarray:  # pragma: no cover - compiled by numba
        ids = np.empty(n, dtype=np.int64)
        for i in numba.prange(n):
            ids[i] = numba.get_thread_id()
        return ids

    return len(np.unique(thread_of_each(iterations)))


class NumbaThreads(Explainer):
    """Every value is the number of threads a numba parallel loop ran on in this chunk."""

    name = "test.numba_threads"
    row_parallel = True

    def explain(self, model: Any, X: np.ndarray, *, background: Any, targets: Any,
                rng: np.random.Generator) -> Attribution:
        threads = numba_threads_used()
        return Attribution(np.full((*X.shape, targets.n_slots), float(threads)))


class ExecutorTestPlugin:
    __name__ = "test"

    @hookimpl
    def xaudit_register_explainers(self, registry: Any) -> None:
        registry.add(DiesOnce)
        registry.add(Fails)
        registry.add(NumbaThreads)
