"""The executor seam without a cluster: the suite's ``execution:`` section, the local engine's
chunks and retries, and the refusal of ``engine: dask`` where ``xaudit[dask]`` is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from dask_support import ExecutorTestPlugin, noisy_identity
from test_missing_extras import assert_refused, write_suite, xaudit_without

import xaudit
from xaudit.chunking import ChunkJoin, ChunkOutput, ChunkRecord
from xaudit.cli import main
from xaudit.errors import PluginError, SuiteError
from xaudit.executor import ChunkError, LocalExecutor
from xaudit.explanation import Attribution
from xaudit.suite import parse_suite


def linear_suite(execution: object) -> dict[str, object]:
    return {"name": "s", "model": {"factory": "m:f"}, "data": {"source": "d.npz"},
            "explainers": [{"id": "a", "method": "ablation"}], "execution": execution}


@pytest.mark.parametrize(("execution", "field"), [
    ({"engine": "spark"}, "execution.engine"),
    ({"chunk_rows": 0}, "execution.chunk_rows"),
    ({"engine": "dask", "chunk_rows": 10, "typo": 1}, "execution.typo"),
    ({"address": "tcp://h:8786"}, "execution"),
    ({"engine": "dask", "address": "tcp://h:8786", "n_workers": 2}, "execution"),
])
def test_a_malformed_execution_section_names_the_field(execution: object, field: str) -> None:
    with pytest.raises(SuiteError) as refused:
        parse_suite(linear_suite(execution))
    assert [p.path for p in refused.value.problems] == [field]


def test_a_malformed_execution_section_is_exit_4(tmp_path: Path) -> None:
    path = write_suite(tmp_path, "bad", "data.npz", ["json"])
    document = yaml.safe_load(path.read_text())
    document["execution"] = {"engine": "dask", "chunk_rows": -5}
    path.write_text(yaml.safe_dump(document))
    assert main(["validate", str(path)]) == 4


def test_engine_dask_without_the_extra_is_refused_before_any_work(tmp_path: Path) -> None:
    path = write_suite(tmp_path, "dask", "data.npz", ["json"])
    document = yaml.safe_load(path.read_text())
    document["execution"] = {"engine": "dask", "chunk_rows": 10}
    path.write_text(yaml.safe_dump(document))
    done = xaudit_without("distributed", "run", str(path), "--out", "out", cwd=tmp_path)
    assert_refused(done, "dask", "execution.engine")
    assert not (tmp_path / "out").exists()
    plain = write_suite(tmp_path, "plain", "data.npz", ["json"])
    done = xaudit_without("distributed", "run", str(plain), "--out", "out",
                          "--scheduler", "tcp://127.0.0.1:1", cwd=tmp_path)
    assert_refused(done, "dask", "--scheduler")
    assert not (tmp_path / "out").exists()


def test_local_chunks_draw_each_chunk_from_its_own_stream() -> None:
    host = xaudit.create_host(plugins=[ExecutorTestPlugin()], autoload=False)
    X = np.arange(30.0).reshape(10, 3)
    model = xaudit.adapt(lambda rows: rows.sum(axis=1), feature_shape=[3])
    explanation = xaudit.explain(model, X, "test.dies_once", seed=5, host=host,
                                 executor=LocalExecutor(4), marker=__file__)
    for start, stop in ((0, 4), (4, 8), (8, 10)):  # independent oracle: NumPy's own spawn
        stream = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(start, stop)))
        assert np.array_equal(explanation.values[start:stop],
                              noisy_identity(X[start:stop], 1, stream))


def test_a_local_chunk_failing_twice_names_its_rows(tmp_path: Path) -> None:
    host = xaudit.create_host(plugins=[ExecutorTestPlugin()], autoload=False)
    X = np.arange(30.0).reshape(10, 3)
    model = xaudit.adapt(lambda rows: rows.sum(axis=1), feature_shape=[3])
    attempts = tmp_path / "attempts"
    executor = LocalExecutor(4, retries=1)
    with pytest.raises(ChunkError, match=r"rows 4:8 \(of 10\) failed 2 time\(s\)") as failed:
        xaudit.explain(model, X, "test.fails", host=host, executor=executor,
                       marker=str(attempts), row_value=18.0)  # row 6's first feature
    assert (failed.value.start, failed.value.stop) == (4, 8)
    assert attempts.read_text().count("attempt") == 2


def test_progress_counts_rows_as_chunks_finish() -> None:
    import io

    from xaudit.progress import Progress

    stream = io.StringIO()
    X = np.arange(30.0).reshape(10, 3)
    model = xaudit.adapt(lambda rows: rows.sum(axis=1), feature_shape=[3])
    with Progress(stream=stream, tty=False, interval=0.0).task("abl", 10):
        xaudit.explain(model, X, "ablation", background=X[:2], executor=LocalExecutor(4))
    counts = [line.split(": ")[2].split(" rows")[0] for line in stream.getvalue().splitlines()
              if " rows," in line]
    assert counts == ["4/10", "8/10", "10/10"]  # one step per chunk, none from inside one


def memory_mapped(array: np.ndarray) -> bool:
    """Whether ``array`` or an array it views is a memory map."""
    while isinstance(array, np.ndarray):
        if isinstance(array, np.memmap):
            return True
        array = array.base
    return False


def _chunk(start: int, values: np.ndarray, std_errors: np.ndarray | None) -> ChunkOutput:
    stop = start + values.shape[0]
    attribution = Attribution(values=values,
                              base_values=values.sum(axis=(1,)),
                              std_errors=std_errors,
                              extras={"delta": values[:, 0, 0], "grid": np.arange(3.0)})
    return ChunkOutput(attribution, np.zeros((stop - start, 1), dtype=np.int64),
                       ChunkRecord(start, stop, 0.0, "w"))


@pytest.mark.parametrize("spill_mb", [None, 1e-6], ids=["in-memory", "memory-mapped"])
def test_chunks_arriving_in_any_order_join_as_their_concatenation(spill_mb: float | None) -> None:
    rng = np.random.default_rng(0)
    pieces = [rng.normal(size=(rows, 3, 1)) for rows in (4, 4, 2)]
    starts = [0, 4, 8]
    errors = [np.abs(piece) for piece in pieces]
    join = ChunkJoin("m", 10, spill_mb)
    for i in (2, 0, 1):  # chunks end out of order on a cluster
        join.add(_chunk(starts[i], pieces[i], errors[i]))
    joined = join.attribution()
    np.testing.assert_array_equal(joined.values, np.concatenate(pieces))  # oracle: NumPy
    np.testing.assert_array_equal(joined.std_errors, np.concatenate(errors))
    np.testing.assert_array_equal(joined.base_values, np.concatenate(pieces).sum(axis=1))
    np.testing.assert_array_equal(joined.extras["delta"], np.concatenate(pieces)[:, 0, 0])
    np.testing.assert_array_equal(joined.extras["grid"], np.arange(3.0))  # the same per chunk
    assert memory_mapped(joined.values) == (spill_mb is not None)


def test_an_array_missing_from_one_chunk_is_missing_from_the_join() -> None:
    values = np.ones((4, 2, 1))
    join = ChunkJoin("m", 8)
    join.add(_chunk(0, values, np.ones_like(values)))
    join.add(_chunk(4, values, None))
    assert join.attribution().std_errors is None


def test_a_missing_chunk_is_refused() -> None:
    join = ChunkJoin("m", 8)
    join.add(_chunk(0, np.ones((4, 2, 1)), None))
    with pytest.raises(PluginError, match="4 rows of 8"):
        join.attribution()


def test_a_local_run_spilled_to_disk_equals_one_in_memory() -> None:
    X = np.arange(60.0).reshape(20, 3) / 7
    model = xaudit.adapt(lambda rows: rows[:, 0] * rows[:, 1] + rows[:, 2], feature_shape=[3])
    plain = xaudit.explain(model, X, "ablation", background=X[:3])
    spilled = xaudit.explain(model, X, "ablation", background=X[:3],
                             executor=LocalExecutor(6, spill_mb=1e-6))
    assert memory_mapped(spilled.values)  # joined on disk, not in memory
    np.testing.assert_array_equal(spilled.values, plain.values)
    np.testing.assert_array_equal(spilled.base_values, plain.base_values)
