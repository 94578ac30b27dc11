"""shap.tree against shap.TreeExplainer (shap 0.51), side by side in one run.

Workloads (issue 4): path-dependent values of a RandomForestRegressor (100 trees, depth 8,
20 features) on 1,000 rows and of a GradientBoostingRegressor (300 trees, depth 5) on 2,000 rows;
interventional values of the same forest for 200 rows against a 100-row background; SHAP
interaction values of the forest on 20 rows; and a streaming run of ``--stream-rows`` rows
(default 10,000; no reference: it reports throughput and peak traced memory, which the chunk
size bounds). Both sides are called through their public entry points (``xaudit.explain`` and
``TreeExplainer.shap_values``), with the explainer objects built inside the timed call. The
error is the largest absolute difference between the two sides' values.

numba compiles our kernels on first use (and caches them on disk): before any timing, every
xaudit workload is warmed up once on 5 rows, so the times exclude JIT compilation. Each side
is then timed once per repeat (``--repeats``, default 1; best of the repeats is kept), so
shap's figure includes building its TreeExplainer and ours includes extracting the trees.

    .venv/bin/python benchmarks/bench_treeshap.py [--only TEXT] [--json rows.json]
        [--device auto|cpu|cuda] [--repeats N] [--stream-rows N]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import shap
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

import xaudit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import Workload, run


def _max_abs(ours: Any, ref: Any) -> float:
    return float(np.max(np.abs(np.asarray(ours) - np.asarray(ref))))


def _ours(model: Any, X: np.ndarray, device: str, **params: Any) -> np.ndarray:
    explanation = xaudit.explain(model, X, method="shap.tree", device=device, **params)
    return np.asarray(explanation.values[..., 0])


def _class_one(ours: Any, ref: Any) -> float:
    """Max |difference| on class 1 (shap 0.51 returns (n, d, 2) for a binary forest)."""
    return _max_abs(ours, np.asarray(ref)[..., 1])


def _ours_class_one(model: Any, X: np.ndarray, device: str, **params: Any) -> np.ndarray:
    explanation = xaudit.explain(model, X, method="shap.tree", device=device, target=1,
                                 **params)
    return np.asarray(explanation.values[..., 0])


def _ours_interactions(model: Any, X: np.ndarray, device: str) -> np.ndarray:
    explanation = xaudit.explain(model, X, method="shap.tree", interactions=True, device=device)
    return np.asarray(explanation.extras["interactions"][..., 0])


def _warm_interventional_tables(model: Any, X: np.ndarray, background: np.ndarray) -> None:
    """Compile the per-leaf table kernel too (a 5-row job plans the pair walk instead)."""
    from xaudit.plugins.shapley import tree_interventional as ti
    from xaudit.plugins.shapley.tree_flat import flatten

    ensemble = xaudit.adapt(model).tree_ensemble()  # type: ignore[attr-defined]
    flat = flatten(ensemble)
    ti.shap_values(flat, ensemble.cast(X), ti.directions(flat, ensemble.cast(background)), None,
                   ti.plan(flat, 1, 1, method="tables"))


def _streaming(model: Any, X: np.ndarray, device: str, chunk_size: int) -> dict[str, float]:
    tracemalloc.start()
    started = time.perf_counter()
    explanation = xaudit.explain(model, X, method="shap.tree", device=device,
                                 chunk_size=chunk_size)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result_mb = explanation.values.nbytes / 2**20
    return {"rows_per_s": X.shape[0] / seconds, "peak_traced_mb": peak / 2**20,
            "result_mb": result_mb, "chunk_size": float(chunk_size)}


def workloads(device: str, repeats: int = 1, stream_rows: int = 10_000) -> list[Workload]:
    """The benchmark's workloads (models fitted here, in a few seconds), warmed up."""
    X, y = make_regression(6000, 20, n_informative=12, noise=10.0, random_state=0)
    forest = RandomForestRegressor(100, max_depth=8, random_state=0, n_jobs=1).fit(X, y)
    boosting = GradientBoostingRegressor(n_estimators=300, max_depth=5,
                                         random_state=0).fit(X[:3000], y[:3000])
    rows_rf, rows_gb, rows_iv, background = X[:1000], X[:2000], X[:200], X[5000:5100]
    # The anchor workload (shared/anchors/tree_anchor.py): a binary forest classifier.
    Xc, yc = make_classification(n_samples=5000, n_features=20, n_informative=8, random_state=0)
    classifier = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0,
                                        n_jobs=2).fit(Xc, yc)
    rows_c, background_c = Xc[:1000], Xc[1000:1100]
    big = np.tile(X, (stream_rows // X.shape[0] + 1, 1))[:stream_rows]
    # JIT warm-up on a few rows (all kernels), so that no timing includes numba compilation;
    # on the CPU backend 'auto' sends 5 rows to the numpy form, so the path-dependent kernel
    # is also warmed by name (the timed workloads are large enough for 'auto' to pick numba)
    _ours_class_one(classifier, rows_c[:5], device)
    _ours(forest, rows_rf[:5], device)
    _ours(boosting, rows_gb[:5], device)
    if device != "cuda":
        _ours(forest, rows_rf[:5], "cpu", backend="numba")
    _ours(forest, rows_iv[:5], device, background=background)
    _warm_interventional_tables(forest, rows_iv[:5], background[:5])
    _ours_interactions(forest, rows_rf[:2], device)
    common: dict[str, Any] = {"repeats": repeats, "warmup": False}
    return [
        Workload(
            "anchor: path-dependent RF classifier, 1000 rows",
            lambda: _ours_class_one(classifier, rows_c, device),
            lambda: shap.TreeExplainer(classifier).shap_values(rows_c, check_additivity=False),
            "shap 0.51", target_ratio=0.5, error=_class_one, error_label="max|diff|", **common),
        Workload(
            "anchor: interventional RF classifier, bg 100, 200 rows",
            lambda: _ours_class_one(classifier, rows_c[:200], device, background=background_c),
            lambda: shap.TreeExplainer(
                classifier, background_c, feature_perturbation="interventional").shap_values(
                rows_c[:200], check_additivity=False),
            "shap 0.51", target_ratio=0.5, error=_class_one, error_label="max|diff|", **common),
        Workload(
            "path-dependent RF 100x d8, 20 feat, 1000 rows",
            lambda: _ours(forest, rows_rf, device),
            lambda: shap.TreeExplainer(forest).shap_values(rows_rf, check_additivity=False),
            "shap 0.51", target_ratio=0.5, error=_max_abs, error_label="max|diff|", **common),
        Workload(
            "path-dependent GBR 300x d5, 2000 rows",
            lambda: _ours(boosting, rows_gb, device),
            lambda: shap.TreeExplainer(boosting).shap_values(rows_gb, check_additivity=False),
            "shap 0.51", target_ratio=0.5, error=_max_abs, error_label="max|diff|", **common),
        Workload(
            "interventional RF, bg 100, 200 rows",
            lambda: _ours(forest, rows_iv, device, background=background),
            lambda: shap.TreeExplainer(
                forest, background, feature_perturbation="interventional").shap_values(
                rows_iv, check_additivity=False),
            "shap 0.51", target_ratio=0.5, error=_max_abs, error_label="max|diff|", **common),
        Workload(
            "interactions RF 100x d8, 20 rows",
            lambda: _ours_interactions(forest, rows_rf[:20], device),
            lambda: shap.TreeExplainer(forest).shap_interaction_values(rows_rf[:20]),
            "shap 0.51", error=_max_abs, error_label="max|diff|", **common),
        Workload(
            f"streaming RF, {stream_rows:,} rows, chunk 4096",
            lambda: _streaming(forest, big, device, 4096), None, "-", repeats=1, warmup=False,
            extra=lambda ours, _: ours),
    ]


def main() -> None:
    """Run the workloads and print the table."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--stream-rows", type=int, default=10_000)
    args, _ = parser.parse_known_args()
    rows = run(workloads(args.device, args.repeats, args.stream_rows),
               f"shap.tree vs shap.TreeExplainer (device={args.device}; numba JIT warmed up "
               "beforehand, not timed)")
    print("\nspeed-up over shap (throughput ratio; target >= 2x, aim 5x):")
    for row in rows:
        if row.ratio:
            print(f"  {row.name:<48} {1.0 / row.ratio:6.2f}x")


if __name__ == "__main__":
    main()
