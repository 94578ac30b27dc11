"""Where ``method="auto"`` switches from ``shap.exact`` to ``shap.kernel``: both timed, one run.

``method="auto"`` explains a model without gradients or trees by exact Shapley values while
they are affordable and by KernelSHAP beyond. The cost of exact values is ``(2^d - 2) x B``
model evaluations per row (``B`` background rows, 100 by default); KernelSHAP's is its budget
of coalitions (``n_samples``, 2,048 by default) ``x B``, plus a weighted regression. This
script measures both on the same rows for ``d`` from 4 to 14 features: an MLP regressor
(scikit-learn, a model whose evaluation costs about as much as a small production model) and
a linear model (evaluation nearly free, so the bookkeeping dominates), background 100 rows,
5 explained rows. Printed per workload: the time of ``shap.exact`` (ours), of ``shap.kernel``
(ref), their ratio (below 1: exact is the cheaper one), and KernelSHAP's relative L2 error
against the exact values (``rel_l2``; zero where its budget enumerates every coalition).

    nice .venv/bin/python benchmarks/bench_auto_cutoff.py [--only TEXT] [--json rows.json]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.neural_network import MLPRegressor

import xaudit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import Workload, run

BACKGROUND, ROWS = 100, 5
WIDTHS = (4, 6, 8, 10, 11, 12, 13, 14)


def model_and_data(d: int, kind: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """A model on ``d`` features with interactions, the explained rows and the background."""
    r = np.random.default_rng(d)
    X = r.normal(size=(2000, d))
    y = np.sin(X[:, 0] * X[:, 1]) + X[:, 2] * X[:, -1] + 0.5 * X.sum(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = (MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=100, random_state=0)
                 if kind == "MLP" else LinearRegression()).fit(X, y)
    return model, X[1000:1000 + ROWS], X[:BACKGROUND]


def workloads() -> list[Workload]:
    """One workload per (model, width): exact against kernel on the same inputs."""
    found = []
    for kind in ("MLP", "linear"):
        for d in WIDTHS:
            model, rows, background = model_and_data(d, kind)

            def explain(method: str, model: Any = model, rows: np.ndarray = rows,
                        background: np.ndarray = background) -> np.ndarray:
                return np.asarray(xaudit.explain(model, rows, method=method,
                                                 background=background, seed=0).values)

            def rel_l2(exact: Any, kernel: Any) -> float:
                return float(np.linalg.norm(kernel - exact) / np.linalg.norm(exact))

            found.append(Workload(
                f"{kind}, d={d}, bg {BACKGROUND}, {ROWS} rows: exact vs kernel",
                lambda explain=explain: explain("shap.exact"),
                lambda explain=explain: explain("shap.kernel"),
                "shap.kernel 2048", error=rel_l2, error_label="kernel rel_l2", repeats=1))
    return found


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    run(workloads(), "shap.exact against shap.kernel by number of features")
