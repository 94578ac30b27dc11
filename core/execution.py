"""The executor a suite's ``execution:`` section names (see :mod:`xaudit.executor`)."""

from __future__ import annotations

from .executor import Executor, LocalExecutor
from .extras import import_from_extra
from .suite import DEFAULT_CHUNK_ROWS, ExecutionSpec


def open_executor(spec: ExecutionSpec) -> Executor:
    """The executor ``spec`` names; raises
    :class:`~xaudit.extras.MissingExtraError` (exit 4) when ``engine: dask`` is asked for
    without ``xaudit[dask]`` installed."""
    if spec.engine == "local":
        return LocalExecutor(spec.chunk_rows, spec.retries)
    import_from_extra("distributed", "dask", "execution.engine: dask")
    from .dask_executor import DaskExecutor

    return DaskExecutor(spec.address, spec.chunk_rows or DEFAULT_CHUNK_ROWS, spec.retries,
                        spec.n_workers)

