"""The executor a suite's ``execution:`` section names (see :mod:`xaudit.executor`)."""

from __future__ import annotations

from .executor import Executor, LocalExecutor
from .extras import import_from_extra
from .suite import DEFAULT_CHUNK_ROWS, ExecutionSpec


def open_executor(spec: ExecutionSpec, spill_mb: float | None = None) -> Executor:
    """The executor ``spec`` names, joining attribution arrays over ``spill_mb`` MiB (the
    suite's ``report.out_of_core_mb``) in memory-mapped scratch files; raises
    :class:`~xaudit.extras.MissingExtraError` (exit 4) when ``engine: dask`` is asked for
    without ``xaudit[dask]`` installed."""
    if spec.engine == "local":
        return LocalExecutor(spec.chunk_rows, spec.retries, spill_mb)
    import_from_extra("distributed", "dask", "execution.engine: dask")
    from .dask_executor import DaskExecutor

    return DaskExecutor(spec.address, spec.chunk_rows or DEFAULT_CHUNK_ROWS, spec.retries,
                        spec.n_workers, spill_mb)

