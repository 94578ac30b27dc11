"""Scale-out on a real Dask ``LocalCluster`` of worker processes (issue 19).

The oracle for "same numbers on any cluster" is the run in this process: a suite explained in
chunks here and on two worker processes must give bit-identical ``arrays.npz``; and a chunk's
numbers are recomputed independently, by calling the explainer on the chunk's rows alone with
NumPy's ``SeedSequence(seed, spawn_key=(start, stop))`` stream, which is what the docs promise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xaudit
from xaudit.exitcodes import ExitCode
from xaudit.host import default_host
from xaudit.targets import resolve_targets

distributed = pytest.importorskip("distributed")
sklearn_ensemble = pytest.importorskip("sklearn.ensemble")

from dask_support import ExecutorTestPlugin, numba_threads_used  # noqa: E402  (after the skips)

CHUNK = 40
N_ROWS = 120


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", scheduler_kwargs={"dashboard": False}
                                  ) as local:
        yield local


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, Any]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 5))
    y = X[:, 0] + X[:, 1] ** 2 - X[:, 2] * X[:, 3]
    forest = sklearn_ensemble.RandomForestRegressor(n_estimators=10, max_depth=4,
                                                    random_state=0).fit(X, y)
    return X, y, forest


def suite(data: tuple[np.ndarray, np.ndarray, Any], execution: dict[str, Any],
          explainers: list[dict[str, Any]] | None = None,
          checks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    X, y, forest = data
    return {
        "name": "scale", "seed": 11, "model": {"object": forest},
        "data": {"X": X, "y": y, "split": {"test_size": 0},
                 "explain": {"from": "all", "n": N_ROWS, "method": "first"},
                 "background": {"n": 20}},
        "explainers": explainers or [
            {"id": "tree", "method": "shap.tree"},
            {"id": "kernel", "method": "shap.kernel", "params": {"n_samples": 64}},
            {"id": "lime", "method": "lime.tabular", "params": {"n_samples": 100}},
        ],
        "checks": checks or [],
        "report": {"formats": ["json"]},
        "execution": execution,
    }


def arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "arrays.npz", allow_pickle=False) as saved:
        return {key: saved[key] for key in saved.files}


def assert_same_arrays(a: Path, b: Path) -> None:
    left, right = arrays(a), arrays(b)
    assert sorted(left) == sorted(right)
    for key in left:
        assert left[key].dtype == right[key].dtype, key
        assert np.array_equal(left[key], right[key], equal_nan=True), key


def on_cluster(cluster: Any) -> dict[str, Any]:
    return {"engine": "dask", "address": cluster.scheduler_address, "chunk_rows": CHUNK}


def test_local_and_cluster_runs_give_bit_identical_arrays(tmp_path: Path, cluster: Any,
                                                          data: Any) -> None:
    stability = [{"check": "stability", "explainer": "kernel", "params": {"repeats": 2}}]
    here = xaudit.run_suite(suite(data, {"chunk_rows": CHUNK}, checks=stability),
                            out_dir=tmp_path / "here")
    there = xaudit.run_suite(suite(data, on_cluster(cluster), checks=stability),
                             out_dir=tmp_path / "there")
    assert not here.explainer_errors
    assert not there.explainer_errors
    assert_same_arrays(tmp_path / "here", tmp_path / "there")
    # the check's re-explanations ran in chunks on the cluster too, with the same numbers
    assert there.checks[0].status == "not_gated"
    assert there.checks[0].value == here.checks[0].value
    assert len(there.provenance["execution"]["check_chunks"]["stability@kernel"]) == 2 * 3
    # the stochastic methods did draw per chunk: rows 40:80 recomputed alone, with the
    # documented stream, are the cluster's rows 40:80
    X, _, forest = data
    model = xaudit.adapt(forest)
    background = X[there.data["sampling"]["background"]["rows"]]
    seed = there.provenance["seeds"]["explainers"]["kernel"]
    rows = X[CHUNK:2 * CHUNK]
    targets = resolve_targets("all", model.output_names, CHUNK, None)
    stream = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CHUNK, 2 * CHUNK)))
    alone = default_host().explainer("shap.kernel", {"n_samples": 64}).explain(
        model, rows, background=background, targets=targets, rng=stream)
    assert np.array_equal(alone.values, there.explanations["kernel"].values[CHUNK:2 * CHUNK])
    # where and how long each chunk ran is recorded, chunk by chunk in row order
    chunks = there.provenance["execution"]["chunks"]["kernel"]
    assert [c["rows"] for c in chunks] == [[0, 40], [40, 80], [80, 120]]
    workers = set(cluster.scheduler_info["workers"])
    assert {c["worker"] for c in chunks} <= workers
    assert all(c["seconds"] > 0 for c in chunks)


def test_a_cluster_run_over_the_bound_joins_on_disk_and_stores_zarr(tmp_path: Path,
                                                                   cluster: Any,
                                                                   data: Any) -> None:
    pytest.importorskip("zarr")
    from xaudit.result_store import ZARR_FILE
    from xaudit.results import AuditResult

    trees = [{"id": "tree", "method": "shap.tree"}]
    here = xaudit.run_suite(suite(data, {"chunk_rows": CHUNK}, trees),
                            out_dir=tmp_path / "here")
    bounded = suite(data, on_cluster(cluster), trees)
    bounded["report"] = {"formats": ["json"], "out_of_core_mb": 1e-6}  # every array over it
    there = xaudit.run_suite(bounded, out_dir=tmp_path / "there")
    joined = there.explanations["tree"].values
    while not isinstance(joined, np.memmap):  # the run's array is a view of a memory map
        joined = joined.base
        assert isinstance(joined, np.ndarray), "joined in memory, not on disk"
    assert (tmp_path / "there" / ZARR_FILE).is_file()
    assert not (tmp_path / "here" / ZARR_FILE).exists()
    loaded = AuditResult.load(tmp_path / "there").explanations["tree"]
    assert np.array_equal(loaded.values, here.explanations["tree"].values)
    assert np.array_equal(loaded.base_values, here.explanations["tree"].base_values)


def test_deterministic_method_agrees_with_one_call_to_rounding(data: Any) -> None:
    # bit-identity is promised for equal chunk_rows only: vectorised sums over another
    # batch of rows may round differently in the last bit
    whole = xaudit.run_suite(suite(data, {}, [{"id": "tree", "method": "shap.tree"}]))
    chunked = xaudit.run_suite(suite(data, {"chunk_rows": 7},
                                     [{"id": "tree", "method": "shap.tree"}]))
    np.testing.assert_allclose(chunked.explanations["tree"].values,
                               whole.explanations["tree"].values, rtol=0, atol=1e-12)
    assert "execution" not in whole.provenance  # a default run records what it always did


def test_a_killed_worker_has_its_chunk_rerun_with_the_same_numbers(
        tmp_path: Path, cluster: Any, data: Any) -> None:
    host = xaudit.create_host(plugins=[ExecutorTestPlugin()], autoload=False)
    marker = tmp_path / "died.pid"
    explainers = [{"id": "dies", "method": "test.dies_once", "params": {"marker": str(marker)}},
                  {"id": "tree", "method": "shap.tree"}]
    killed = xaudit.run_suite(suite(data, on_cluster(cluster), explainers), host=host,
                              out_dir=tmp_path / "killed")
    with pytest.raises(ProcessLookupError):  # the worker process that ran the chunk is gone
        os.kill(int(marker.read_text()), 0)
    assert not killed.explainer_errors
    clean = xaudit.run_suite(suite(data, {"chunk_rows": CHUNK}, explainers), host=host,
                             out_dir=tmp_path / "clean")  # the marker exists: no death here
    assert not clean.explainer_errors
    assert_same_arrays(tmp_path / "killed", tmp_path / "clean")
    assert killed.explanations["dies"].values.shape == (N_ROWS, 5, 1)


def test_a_chunk_failing_twice_crashes_its_explainer_only(tmp_path: Path, cluster: Any,
                                                          data: Any) -> None:
    X, y, forest = data
    X = X.copy()
    X[50, 0] = 99.0  # row 50 lies in the chunk of rows 40:80
    host = xaudit.create_host(plugins=[ExecutorTestPlugin()], autoload=False)
    attempts = tmp_path / "attempts"
    explainers = [{"id": "fails", "method": "test.fails",
                   "params": {"marker": str(attempts), "row_value": 99.0}},
                  {"id": "tree", "method": "shap.tree"}]
    result = xaudit.run_suite(suite((X, y, forest), on_cluster(cluster), explainers),
                              host=host, out_dir=tmp_path / "out")
    assert result.exit_code() == ExitCode.CRASHED
    error = result.explainer_errors["fails"]
    assert error.type == "ChunkError"
    assert "rows 40:80 (of 120) failed 2 time(s)" in error.message
    assert "row with value 99.0 cannot be explained" in error.traceback
    assert attempts.read_text().count("attempt") == 2  # tried, then retried once by Dask
    assert "tree" in result.explanations
    saved = xaudit.AuditResult.load(tmp_path / "out")
    assert np.array_equal(saved.explanations["tree"].values, result.explanations["tree"].values)
    assert "fails" in saved.explainer_errors


def test_each_chunk_runs_numba_on_one_thread_of_its_worker(cluster: Any, data: Any) -> None:
    # a worker runs one chunk per task thread; numba's own pool (every core by default) would
    # oversubscribe the machine's cores once there are as many worker processes as cores
    host = xaudit.create_host(plugins=[ExecutorTestPlugin()], autoload=False)
    explainers = [{"id": "threads", "method": "test.numba_threads"}]
    result = xaudit.run_suite(suite(data, on_cluster(cluster), explainers), host=host)
    assert not result.explainer_errors
    assert np.all(result.explanations["threads"].values == 1)
    # the same loop in this process still runs on numba's whole pool
    numba = pytest.importorskip("numba")
    assert numba_threads_used() == min(numba.config.NUMBA_NUM_THREADS, 10_000)


def test_one_numba_thread_restores_the_calling_threads_count() -> None:
    numba = pytest.importorskip("numba")
    from xaudit.dask_executor import one_numba_thread

    before = numba.get_num_threads()
    with one_numba_thread():
        assert numba.get_num_threads() == 1
        assert numba_threads_used() == 1
    assert numba.get_num_threads() == before


def test_one_numba_thread_applies_to_numba_imported_inside_it() -> None:
    # an explainer imports numba on first use: the worker's count must hold for it too
    probe = ("import sys\n"
             "from xaudit.dask_executor import one_numba_thread\n"
             "assert 'numba' not in sys.modules\n"
             "with one_numba_thread():\n"
             "    import numba\n"
             "    print(numba.get_num_threads())\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, check=True, timeout=120)
    assert done.stdout.strip() == "1"


def test_a_model_whose_last_copy_was_lost_is_shipped_again(cluster: Any, data: Any) -> None:
    """Dask's memory manager may leave the scattered model on one worker only; when that
    worker dies, the chunks depending on it are cancelled. Losing the model is played here by
    cancelling its future: once between two runs (the next run scatters it again), once
    right after it was shipped for a run (its chunks are cancelled and resubmitted with the
    model scattered again). The values are those of one local call."""
    from xaudit.dask_executor import DaskExecutor

    X, _, forest = data
    model = xaudit.adapt(forest)
    alone = xaudit.explain(model, X[:N_ROWS], method="shap.tree").values
    with DaskExecutor(cluster.scheduler_address, chunk_rows=CHUNK, retries=0) as executor:
        lost = executor._shipped(model, once=True)
        executor.client.cancel(lost)  # lost between runs, and seen to be before the next
        deadline = time.monotonic() + 30
        while lost.status == "finished" and time.monotonic() < deadline:
            time.sleep(0.01)
        between = xaudit.explain(model, X[:N_ROWS], method="shap.tree", executor=executor)
        assert executor._models[model.fingerprint()] is not lost

        shipped_for_run = executor._shipped
        shipped: list[Any] = []

        def lost_once_shipped(model: Any, once: bool, lost: Any = None) -> Any:
            copy = shipped_for_run(model, once, lost)
            if not shipped:
                executor.client.cancel(copy)  # lost while its chunks wait for it
            shipped.append(copy)
            return copy

        executor._shipped = lost_once_shipped  # type: ignore[method-assign]
        executor.retries = 1
        during = xaudit.explain(model, X[:N_ROWS], method="shap.tree", executor=executor)
        assert len(shipped) == 2  # scattered again once, for every cancelled chunk
        assert shipped[1].status == "finished"
    np.testing.assert_allclose(between.values, alone, rtol=0, atol=1e-12)
    np.testing.assert_allclose(during.values, alone, rtol=0, atol=1e-12)
