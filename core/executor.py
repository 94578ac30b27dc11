"""Executors: where the row chunks of a row-parallel explainer are explained.

The engine (:func:`xaudit.engine.explain`) hands a row-parallel explainer's rows to an
:class:`Executor`, which splits them into chunks of ``chunk_rows`` rows
(:func:`~xaudit.batching.row_blocks`), explains each chunk with its own random stream
(:func:`~xaudit.chunking.explain_chunk`) and places each chunk at its rows as it arrives
(:class:`~xaudit.chunking.ChunkJoin`; arrays over ``spill_mb`` MiB, the suite's
``report.out_of_core_mb``, in memory-mapped scratch files rather than memory). The
:class:`LocalExecutor` runs the chunks here, one after the other; the Dask executor
(:mod:`xaudit.dask_executor`) runs them on a ``dask.distributed`` cluster. Both run the same
chunks with the same streams, so their numbers are bit-identical.

A chunk that raises is tried again ``retries`` times; a chunk that fails every attempt raises
:class:`ChunkError` naming its rows, which the runner records as the explainer's crash.
Global explainers (``row_parallel = False``: partial dependence, permutation importance) are
never handed to an executor: they run where they are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import numpy as np

from .batching import row_blocks
from .chunking import (
    ChunkJoin,
    ChunkOutput,
    ChunkRecord,
    ChunkTask,
    chunk_tasks,
    explain_chunk,
)
from .errors import XauditError
from .explanation import Attribution
from .model import InputSpec, Model
from .plugin import Explainer
from .progress import rows_done, rows_hidden
from .targets import TargetSelection


class ChunkError(XauditError):
    """A chunk of rows failed every attempt; ``start``/``stop`` are its rows."""

    def __init__(self, method: str, start: int, stop: int, n: int, attempts: int,
                 cause: BaseException) -> None:
        self.start, self.stop = start, stop
        super().__init__(f"explainer {method!r}: the chunk of rows {start}:{stop} (of {n}) "
                         f"failed {attempts} time(s): {type(cause).__name__}: {cause}")


class Executor(ABC):
    """Explains row chunks; a context manager holding its resources (a cluster) while open.

    ``records`` collects a :class:`~xaudit.chunking.ChunkRecord` per chunk run since the
    last :meth:`take_records`.
    """

    engine: str = ""

    def __init__(self, chunk_rows: int | None, retries: int = 1,
                 spill_mb: float | None = None) -> None:
        self.chunk_rows = chunk_rows
        self.retries = retries
        self.spill_mb = spill_mb
        self.records: list[ChunkRecord] = []

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Release what the executor started (a local cluster)."""

    def describe(self) -> dict[str, Any]:
        """The executor as recorded in the run's provenance."""
        return {"engine": self.engine, "chunk_rows": self.chunk_rows, "retries": self.retries}

    def take_records(self) -> list[ChunkRecord]:
        """The chunk records collected since the last call, in row order."""
        taken, self.records = sorted(self.records, key=lambda r: r.start), []
        return taken

    def explain(self, method: str, explainer: Explainer, model: Model, rows: np.ndarray, *,
                background: np.ndarray | None, targets: TargetSelection, seed: int,
                extra: dict[str, Any], input_spec: InputSpec | None = None,
                ship_once: bool = True) -> Attribution | None:
        """The attribution of ``rows`` joined from its chunks, or ``None`` when this executor
        leaves the call to the caller (no ``chunk_rows`` on the local engine: one call with the
        explainer's seed, as without an executor).

        Target indices an explainer fills itself (pending ``"predicted"``) are written back
        into ``targets``. ``ship_once``: executors that ship the model to workers ship it once
        per run, keyed by its fingerprint (``False``: with this call only).
        """
        chunk_rows = self.chunk_size
        if chunk_rows is None:
            return None
        n = rows.shape[0]
        slices = row_blocks(n, chunk_rows)
        tasks = chunk_tasks(explainer, rows, background, targets, seed, extra, input_spec,
                            slices)
        joined = ChunkJoin(method, n, self.spill_mb)
        for out in self.run_chunks(method, tasks, model, ship_once, n):
            targets.indices[out.record.start:out.record.stop] = out.target_indices
            self.records.append(out.record)
            joined.add(out)
        return joined.attribution()

    @property
    def chunk_size(self) -> int | None:
        """Rows per chunk (``None``: the local engine's one call over all rows)."""
        return self.chunk_rows

    @abstractmethod
    def run_chunks(self, method: str, tasks: list[ChunkTask], model: Model,
                   ship_once: bool, n: int) -> Iterator[ChunkOutput]:
        """Every task's output as it ends (in any order); reports rows done as chunks end."""


class LocalExecutor(Executor):
    """Runs the chunks in this process, one after the other (today's behaviour when
    ``chunk_rows`` is unset)."""

    engine = "local"

    def close(self) -> None:
        """Nothing to release: the chunks ran in this process."""

    def run_chunks(self, method: str, tasks: list[ChunkTask], model: Model,
                   ship_once: bool, n: int) -> Iterator[ChunkOutput]:
        for task in tasks:
            out = self._attempt(method, task, model, n)
            rows_done(task.rows.shape[0])
            yield out

    def _attempt(self, method: str, task: ChunkTask, model: Model, n: int) -> ChunkOutput:
        for attempt in range(self.retries + 1):
            try:
                with rows_hidden():  # the chunk's rows are counted when it ends
                    return explain_chunk(task, model)
            except (KeyboardInterrupt, XauditError):
                raise
            except Exception as exc:
                if attempt == self.retries:
                    raise ChunkError(method, task.start, task.start + task.rows.shape[0], n,
                                     attempt + 1, exc) from exc
        raise AssertionError("unreachable")  # the loop returns or raises

