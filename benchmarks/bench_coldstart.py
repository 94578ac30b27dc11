"""Cold start: a fresh process that loads a tree ensemble and explains 40 rows, against shap.

A CI gate pays Python's start, the imports and the first kernel call on every run, so issue 16
measures whole processes: load a 100-tree ``GradientBoostingRegressor`` (depth 4, 20 features)
from a file, import the library, explain 40 rows with exact path-dependent TreeSHAP
(``xaudit.explain(..., method="shap.tree")`` against ``shap.TreeExplainer(model)(X)``). Runs
are paired (ours then shap's, ``--runs`` times) and the medians compared; each process also
reports whether torch was imported (``device: auto`` must not import it to ask for a GPU).

    .venv/bin/python benchmarks/bench_coldstart.py [--runs 5] [--trees 100]

The model file is written by this script into a temporary folder (a pickle of our own making;
never load pickles you did not write).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

OURS = """
import pickle, sys, time
started = time.perf_counter()
with open(sys.argv[1], "rb") as handle:
    model, X = pickle.load(handle)
import xaudit
xaudit.explain(model, X, method="shap.tree")
print(time.perf_counter() - started, "torch" in sys.modules)
"""

SHAP = """
import pickle, sys, time
started = time.perf_counter()
with open(sys.argv[1], "rb") as handle:
    model, X = pickle.load(handle)
import shap
shap.TreeExplainer(model)(X)
print(time.perf_counter() - started, "torch" in sys.modules)
"""


def write_model(folder: Path, trees: int) -> Path:
    """The benchmark's model and rows, pickled into ``folder``."""
    from sklearn.datasets import make_regression
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = make_regression(n_samples=1000, n_features=20, noise=1.0, random_state=0)
    model = GradientBoostingRegressor(n_estimators=trees, max_depth=4, random_state=0).fit(X, y)
    path = folder / "model.pkl"
    path.write_bytes(pickle.dumps((model, X[:40])))
    return path


def whole_process(code: str, model: Path) -> tuple[float, bool]:
    """Seconds from the process's first line to the explanation, and whether torch loaded."""
    done = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True,
                          text=True, check=True, timeout=600)
    seconds, torch = done.stdout.split()
    return float(seconds), torch == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--trees", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = write_model(Path(folder), args.trees)
        whole_process(OURS, model)  # numba's cache and the OS page cache warm for both sides
        whole_process(SHAP, model)
        ours, theirs, torch_loaded = [], [], False
        for _ in range(args.runs):
            seconds, torch = whole_process(OURS, model)
            ours.append(seconds)
            torch_loaded |= torch
            theirs.append(whole_process(SHAP, model)[0])
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"cold start, {args.trees} trees, 40 rows, median of {args.runs} paired processes")
    print(f"{'workload':<34} {'xaudit s':>9} {'shap s':>9} {'ratio':>6}  torch imported")
    print(f"{'load + import + explain 40 rows':<34} {a:>9.2f} {b:>9.2f} {a / b:>6.2f}  "
          f"{'yes' if torch_loaded else 'no'}")
    print("runs (xaudit):", " ".join(f"{s:.2f}" for s in ours))
    print("runs (shap):  ", " ".join(f"{s:.2f}" for s in theirs))


if __name__ == "__main__":
    main()
