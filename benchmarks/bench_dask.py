"""Scale-out on Dask (issue 19): 2 worker processes against 1, side by side in one run.

Workloads:

- TreeSHAP path-dependent values of the issue-4 forest (``RandomForestRegressor``, 100 trees,
  depth 8, 20 features) over ``--tree-rows`` rows (default 100,000; the issue's figure is
  ``--tree-rows 1000000``) on a ``LocalCluster`` of 2 single-threaded worker processes, and on
  one of 1: throughput ratio, and each worker's peak resident memory (``ru_maxrss``) after the
  run. Identity: the first ``--identity-rows`` rows (20,000) explained on the 2-worker cluster
  and by the local engine with the same ``chunk_rows`` are compared bit for bit.
- KernelSHAP on ``--kernel-rows`` rows (default 2,000) of the issue-4 MLP
  (``bench_kernelshap.model_and_data``), 2 workers against 1.
- The same TreeSHAP rows in this process (the local engine, same ``chunk_rows``, numba on all
  cores) against the 2-worker cluster: what scale-out gains over one process on this machine.
- Scheduling overhead: 100 rows of TreeSHAP on the warm 2-worker cluster against the same call
  in this process without an executor.

Clusters are started (and the model shipped, and numba's cached kernels loaded on every
worker, by a 10-row warm-up) before any timing; their start-up time is printed apart. Each
side runs once (no warm-up call; ``--repeats`` for best of N). The machine's other load is
not controlled: on a shared 2-core machine the 2-worker ratio is bounded by the cores that are
free at the time.

    .venv/bin/python benchmarks/bench_dask.py [--tree-rows N] [--kernel-rows N]
        [--chunk-rows N] [--repeats N] [--json rows.json]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import make_regression
from sklearn.ensemble import RandomForestRegressor

import xaudit
from xaudit.dask_executor import DaskExecutor
from xaudit.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernelshap import BACKGROUND
from bench_kernelshap import model_and_data as mlp_model_and_data
from runner import Workload, run

TARGET = 1 / 1.7
"""2 workers' time over 1 worker's: at most 1 / 1.7 (throughput at least 1.7 times)."""


def peak_rss_mib(executor: DaskExecutor) -> list[float]:
    """Each worker's peak resident memory so far, in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    peaks = executor.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return [round(kib / 1024, 1) for kib in peaks.values()]


def max_abs(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def started(n_workers: int, chunk_rows: int) -> tuple[DaskExecutor, float]:
    begin = time.perf_counter()
    executor = DaskExecutor(None, chunk_rows, n_workers=n_workers)
    return executor, time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree-rows", type=int, default=100_000)
    parser.add_argument("--kernel-rows", type=int, default=2_000)
    parser.add_argument("--identity-rows", type=int, default=20_000)
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=1)
    args, _ = parser.parse_known_args()

    X, y = make_regression(n_samples=max(args.tree_rows, 5_000), n_features=20, noise=0.1,
                           random_state=0)
    forest = RandomForestRegressor(n_estimators=100, max_depth=8, random_state=0,
                                   n_jobs=1).fit(X[:5_000], y[:5_000])
    forest_model = xaudit.adapt(forest)
    predict, kernel_rows, background = mlp_model_and_data(args.kernel_rows)
    mlp = xaudit.adapt(predict, feature_shape=[kernel_rows.shape[1]])
    kernel_chunk = max(1, min(args.chunk_rows, args.kernel_rows // 8))

    def tree(executor: Any, rows: np.ndarray) -> np.ndarray:
        return xaudit.explain(forest_model, rows, "shap.tree", executor=executor,
                              feature_perturbation="tree_path_dependent").values

    def kernel(executor: Any) -> np.ndarray:
        return xaudit.explain(mlp, kernel_rows, "shap.kernel", background=background,
                              executor=executor, n_samples=2 * 16 + 2048).values

    clusters = {}
    for n in (1, 2):
        clusters[n], seconds = started(n, args.chunk_rows)
        print(f"LocalCluster of {n} worker process(es) started in {seconds:.1f} s")
        begin = time.perf_counter()
        tree(clusters[n], X[:10])  # ships the forest, loads numba's cached kernels
        clusters[n].chunk_rows = 1  # 4 one-row chunks per worker: every worker imports scipy
        xaudit.explain(mlp, kernel_rows[:4 * n], "shap.kernel", background=background,
                       executor=clusters[n])
        clusters[n].chunk_rows = args.chunk_rows
        print(f"  warm-up (model shipping, kernel loading): {time.perf_counter() - begin:.1f} s")
    two, one = clusters[2], clusters[1]

    sample = X[:args.identity_rows]
    identical = np.array_equal(tree(two, sample), tree(LocalExecutor(args.chunk_rows), sample))
    print(f"identity, {len(sample)} rows, 2 workers vs local engine (chunk_rows "
          f"{args.chunk_rows}): {'bit-identical' if identical else 'DIFFERENT'}")

    def tree_extra(_: Any, __: Any) -> dict[str, float]:
        return {"peak_rss_mib_per_worker_2w": max(peak_rss_mib(two)),
                "peak_rss_mib_1w": max(peak_rss_mib(one)), "identical_20k": float(identical)}

    def with_chunk(executor: DaskExecutor, rows: int) -> DaskExecutor:
        executor.chunk_rows = rows
        return executor

    rows_tree = X[:args.tree_rows]
    workloads = [
        Workload(f"shap.tree path-dependent, forest 100x8, {len(rows_tree)} rows, "
                 f"chunk {args.chunk_rows}", lambda: tree(with_chunk(two, args.chunk_rows),
                                                          rows_tree),
                 lambda: tree(with_chunk(one, args.chunk_rows), rows_tree), "1 worker",
                 target_ratio=TARGET, extra=tree_extra, repeats=args.repeats, warmup=False,
                 error=max_abs, error_label="max|2w-1w|"),
        Workload(f"shap.tree path-dependent, {len(rows_tree)} rows: 2 workers vs this process",
                 lambda: tree(with_chunk(two, args.chunk_rows), rows_tree),
                 lambda: tree(LocalExecutor(args.chunk_rows), rows_tree),
                 "local engine, numba on all cores", repeats=args.repeats, warmup=False,
                 error=max_abs, error_label="max|2w-local|"),
        Workload(f"shap.kernel MLP 16 feat, bg {BACKGROUND}, {args.kernel_rows} rows, "
                 f"chunk {kernel_chunk}", lambda: kernel(with_chunk(two, kernel_chunk)),
                 lambda: kernel(with_chunk(one, kernel_chunk)), "1 worker",
                 target_ratio=TARGET, repeats=args.repeats, warmup=False, error=max_abs,
                 error_label="max|2w-1w|"),
        Workload("shap.tree 100 rows: 2-worker cluster vs local (overhead)",
                 lambda: tree(with_chunk(two, args.chunk_rows), X[:100]),
                 lambda: tree(None, X[:100]), "local, no executor",
                 repeats=max(3, args.repeats)),
    ]
    try:
        run(workloads, "xaudit on Dask: 2 worker processes against 1")
    finally:
        for executor in clusters.values():
            executor.close()


if __name__ == "__main__":
    main()
