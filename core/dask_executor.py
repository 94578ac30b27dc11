"""The Dask executor: row chunks explained on a ``dask.distributed`` cluster.

Imported only when a suite asks for ``execution.engine: dask`` (``xaudit[dask]``). It connects to
the scheduler at ``address``, or starts a ``LocalCluster`` of worker processes that it stops on
:meth:`~xaudit.executor.Executor.close`. The model is scattered to every worker once per run,
keyed by its fingerprint, and each chunk task refers to it; a chunk that raises is retried by
Dask (``retries``), and a chunk whose worker dies is rescheduled by the scheduler on another
worker. Broadcast copies do not last: Dask's active memory manager drops the replicas no
waiting task needs, so the model may live on one worker only, and when that worker dies the
chunks still to run are cancelled for their lost dependency. The model is then scattered
again (also at the next run's start, when the copy was lost between runs) and those chunks
resubmitted, each at most ``retries`` more times: with ``retries`` of 1 or more a dead worker
costs a rerun, not the explainer. Which worker ran a chunk, and for how long, is recorded;
the numbers do not depend on it (:func:`~xaudit.seeding.chunk_rng`).

Each chunk runs numba's parallel kernels (TreeSHAP) on one thread (:func:`one_numba_thread`):
a worker runs ``nthreads`` chunks at once, one per thread, as Dask's nanny already assumes for
OpenMP, MKL and OpenBLAS (``distributed.nanny.pre-spawn-environ`` sets them to 1). Numba's pool
is not pinned by the nanny and defaults to every core of the machine, so without this each
worker process would use every core and the workers would oversubscribe them.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from typing import Any

from .chunking import ChunkOutput, ChunkTask, explain_chunk
from .errors import InputError
from .executor import ChunkError, Executor
from .extras import import_from_extra
from .model import Model
from .progress import rows_done

distributed = import_from_extra("distributed", "dask", "execution.engine: dask")

CONNECT_TIMEOUT_S = 10
"""Seconds to wait for the scheduler at ``execution.address`` before refusing the run."""


@contextmanager
def one_numba_thread() -> Iterator[None]:
    """The enclosed numba parallel kernels run on one thread: the calling thread's share of
    its worker, whose ``nthreads`` task threads each explain one chunk at a time.

    Numba imported already: :func:`numba.set_num_threads` for this thread (numba keeps the
    count per calling thread), restored on exit. Not imported yet: ``NUMBA_NUM_THREADS=1`` in
    this worker process's environment, which numba reads when an explainer first imports it
    (numba is not imported here for explainers that never use it). A kernel's rows are split
    over threads without changing any row's arithmetic, so the values do not change.
    """
    numba = sys.modules.get("numba")
    if numba is None:
        os.environ["NUMBA_NUM_THREADS"] = "1"
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _on_worker(task: ChunkTask, model: Model) -> ChunkOutput:
    """A chunk explained on the worker running this task (recorded by its address), with
    numba on this task's one thread."""
    with one_numba_thread():
        return explain_chunk(task, model, distributed.get_worker().address)


class DaskExecutor(Executor):
    """Chunks submitted to a Dask cluster: the one at ``address``, or a local cluster of
    ``n_workers`` single-threaded worker processes (2 by default) started here."""

    engine = "dask"

    def __init__(self, address: str | None, chunk_rows: int, retries: int = 1,
                 n_workers: int | None = None, spill_mb: float | None = None) -> None:
        super().__init__(chunk_rows, retries, spill_mb)
        self.cluster: Any = None
        try:
            if address is None:
                self.cluster = distributed.LocalCluster(
                    n_workers=n_workers or 2, threads_per_worker=1, processes=True,
                    host="127.0.0.1", scheduler_kwargs={"dashboard": False})
                address = self.cluster.scheduler_address
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S,
                                             set_as_default=False)
        except OSError as exc:
            self.close()
            raise InputError(f"execution.address: cannot reach the Dask scheduler at "
                             f"{address}: {exc}") from None
        self.address = address
        self._models: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        workers = self.client.scheduler_info().get("workers", {}) if self.client else {}
        return {**super().describe(), "address": self.address, "n_workers": len(workers),
                "local_cluster": self.cluster is not None}

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self.cluster is not None:
            self.cluster.close()

    def _shipped(self, model: Model, once: bool, lost: Any = None) -> Any:
        """``model`` on every worker: ``once`` per run, keyed by its fingerprint (else with
        this call only: a randomized copy a check re-explains with). A copy shipped before
        is scattered again when it is the ``lost`` one (chunks needing it were cancelled) or
        its future is no longer finished (its last worker died between runs)."""
        if not once:
            return self.client.scatter(model, broadcast=True, hash=False)
        key = model.fingerprint()
        if key in self._models and (self._models[key] is lost
                                    or self._models[key].status != "finished"):
            del self._models[key]
        if key not in self._models:  # a fresh name each time: the scheduler may still be
            name = f"xaudit-model-{key}-{uuid.uuid4().hex[:8]}"  # forgetting a lost one
            self._models[key] = self.client.scatter({name: model}, broadcast=True)[name]
        return self._models[key]

    def run_chunks(self, method: str, tasks: list[ChunkTask], model: Model,
                   ship_once: bool, n: int) -> Iterator[ChunkOutput]:
        run, shipped = uuid.uuid4().hex[:8], self._shipped(model, ship_once)
        submitted: dict[int, int] = {}  # times each chunk (by its first row) was submitted
        pending: dict[str, tuple[Any, ChunkTask, Any]] = {}  # future, task, model it needs
        ended = distributed.as_completed(loop=self.client.loop)

        def submit(task: ChunkTask, shipped: Any) -> None:
            times = submitted[task.start] = submitted.get(task.start, 0) + 1
            future = self.client.submit(_on_worker, task, shipped, retries=self.retries,
                                        pure=False,
                                        key=f"xaudit-{method}-{run}-{task.start}-{times}")
            pending[future.key] = (future, task, shipped)
            ended.add(future)

        for task in tasks:
            submit(task, shipped)
        try:
            for future in ended:
                _, task, needed = pending.pop(future.key)
                try:
                    out = future.result()
                except CancelledError as exc:  # a dependency lost: the model's last copy
                    if submitted[task.start] > self.retries:  # lost again and again: give up
                        raise self._failed(method, task, n, exc) from exc
                    if needed is shipped:  # the first chunk to find it lost ships it again
                        try:
                            shipped = self._shipped(model, ship_once, lost=needed)
                        except Exception as again:  # the cluster itself is gone
                            raise self._failed(method, task, n, again) from again
                    submit(task, shipped)
                    continue
                except Exception as exc:
                    raise self._failed(method, task, n, exc) from exc
                future.release()  # the worker may drop the chunk's result once it is here
                rows_done(task.rows.shape[0])
                yield out
        finally:  # a failed chunk, or a caller that stopped early: the rest is not needed
            if pending:
                self.client.cancel([future for future, _, _ in pending.values()])

    def _failed(self, method: str, task: ChunkTask, n: int, cause: BaseException) -> ChunkError:
        return ChunkError(method, task.start, task.start + task.rows.shape[0], n,
                          self.retries + 1, cause)
