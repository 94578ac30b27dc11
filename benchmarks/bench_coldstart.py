"""Cold start: a fresh process that loads a tree ensemble and explains 40 rows, against shap.

A CI gate pays Python's start, the imports and the first kernel call on every run, so issue 16
measures whole processes: load a 100-tree ``GradientBoostingRegressor`` (depth 4, 20 features)
from a file, import the library, explain 40 rows with exact path-dependent TreeSHAP
(``xaudit.explain(..., method="shap.tree")`` against ``shap.TreeExplainer(model)(X)``). Runs
are paired (ours then shap's, ``--runs`` times) and the medians compared, in wall-clock seconds
and in the process's CPU seconds (user + system: less disturbed by other work on a shared
machine). Each process also reports whether torch and numba were imported.

``--suite`` measures ``xaudit run`` of a TreeSHAP-only suite end to end instead (the same model
from a file with ``trust: true``, the rows from a CSV file, a completeness gate,
``--formats json,md,junit``), from the process's start to its exit, beside a script that does
the same with shap (read the CSV with pandas, unpickle, explain, write the values as JSON).
``--importtime`` prints where one xaudit process's import time goes (``python -X importtime``),
summed by top-level package. ``--backend numba`` forces the compiled kernel (the behaviour
before ``backend: auto`` chose numpy for small workloads), to show what that choice saves.

    .venv/bin/python benchmarks/bench_coldstart.py [--runs 5] [--trees 100] [--suite]
        [--importtime] [--no-bytecode] [--backend auto|numba|numpy]

Bytecode: an installed package comes with its compiled ``.pyc`` files; the warm-up runs write
them (they run without ``PYTHONDONTWRITEBYTECODE``) so both sides start as installed.
``--no-bytecode`` keeps the environment as it is (xaudit recompiled in every process when it
is an editable install and ``PYTHONDONTWRITEBYTECODE`` is set).

The model file is written by this script into a temporary folder (a pickle of our own making;
never load pickles you did not write).
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

LOADED = "'torch' in sys.modules, 'numba' in sys.modules"
REPORT = f"print(time.perf_counter() - started, {LOADED})"

OURS = f"""
import pickle, sys, time
started = time.perf_counter()
with open(sys.argv[1], "rb") as handle:
    model, X = pickle.load(handle)
import xaudit
xaudit.explain(model, X, method="shap.tree", backend=sys.argv[2])
{REPORT}
"""

SHAP = f"""
import pickle, sys, time
started = time.perf_counter()
with open(sys.argv[1], "rb") as handle:
    model, X = pickle.load(handle)
import shap
shap.TreeExplainer(model)(X)
{REPORT}
"""

SUITE = """\
name: coldstart
seed: 0
model: {path: model.pkl, trust: true, task: regression}
data:
  source: data.csv
  target: y
  explain: {n: 40}
explainers:
  - {id: treeshap, method: shap.tree, params: {feature_perturbation: tree_path_dependent}}
checks:
  - {check: completeness, explainer: treeshap, gate: {threshold: 1.0e-6}}
report:
  out_dir: out
"""

SHAP_SUITE = f"""
import json, pickle, sys
import pandas
import shap
frame = pandas.read_csv("data.csv")
with open("model.pkl", "rb") as handle:
    model = pickle.load(handle)
X = frame.drop(columns="y").to_numpy()[:40]
explanation = shap.TreeExplainer(model)(X)
with open("shap_values.json", "w") as handle:
    json.dump({{"values": explanation.values.tolist(),
               "base_values": explanation.base_values.tolist()}}, handle)
print({LOADED})
"""


def write_model(folder: Path, trees: int) -> Path:
    """The benchmark's model, rows and suite written into ``folder``; the model file's path."""
    import numpy as np
    from sklearn.datasets import make_regression
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = make_regression(n_samples=1000, n_features=20, noise=1.0, random_state=0)
    model = GradientBoostingRegressor(n_estimators=trees, max_depth=4, random_state=0).fit(X, y)
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    header = ",".join([f"x{i}" for i in range(X.shape[1])] + ["y"])
    np.savetxt(folder / "data.csv", np.column_stack([X, y]), delimiter=",", header=header,
               comments="")
    (folder / "suite.yaml").write_text(SUITE)
    path = folder / "model_rows.pkl"
    path.write_bytes(pickle.dumps((model, X[:40])))
    return path


def whole_process(argv: list[str], folder: Path, env: dict[str, str],
                  inner: bool = True) -> dict[str, float | bool | None]:
    """Wall seconds (``inner``: the script's own figure, from its first line; else from the
    process's start to its exit), CPU seconds of the child, and whether torch and numba were
    imported (``None``: not reported)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=False,
                          timeout=600, cwd=folder, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1: a gate failed, still a complete run
        raise RuntimeError(f"{argv[:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    words = done.stdout.split()
    if argv[0] != "-c":  # xaudit run reports no flags
        return {"wall": wall, "cpu": cpu, "torch": None, "numba": None}
    return {"wall": float(words[-3]) if inner else wall, "cpu": cpu,
            "torch": words[-2] == "True", "numba": words[-1] == "True"}


def importtime(argv: list[str], folder: Path, env: dict[str, str], top: int = 14) -> None:
    """Self import time of one process, summed by top-level package, largest first."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True,
                          text=True, check=False, timeout=600, cwd=folder, env=env)
    totals: dict[str, int] = defaultdict(int)
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)", line)
        if found:
            totals[found.group(2).split(".")[0]] += int(found.group(1))
    print(f"import time by top-level package (self time summed, one process, "
          f"{sum(totals.values()) / 1e6:.2f} s in all):")
    for name, micros in sorted(totals.items(), key=lambda item: -item[1])[:top]:
        print(f"  {name:<24} {micros / 1e6:6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--suite", action="store_true",
                        help="xaudit run of a TreeSHAP-only suite, --formats json,md,junit")
    parser.add_argument("--importtime", action="store_true",
                        help="also print where one xaudit process's import time goes")
    parser.add_argument("--backend", default="auto", choices=["auto", "numba", "numpy"],
                        help="shap.tree's backend in the explain workload (not --suite)")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE as the environment sets it")
    args = parser.parse_args()
    env = dict(os.environ)
    warm_env = env if args.no_bytecode else {k: v for k, v in env.items()
                                             if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        model = str(write_model(folder, args.trees))
        if args.suite:
            ours_argv = ["-m", "xaudit", "run", "suite.yaml", "--formats", "json,md,junit"]
            shap_argv = ["-c", SHAP_SUITE]
            label = "xaudit run (json,md,junit) vs shap script"
        else:
            ours_argv, shap_argv = ["-c", OURS, model, args.backend], ["-c", SHAP, model]
            label = "load + import + explain 40 rows"
        # numba's cache, the bytecode and the OS page cache warm for both sides
        inner = not args.suite  # a suite run is timed from outside, on both sides
        whole_process(ours_argv, folder, warm_env, inner)
        whole_process(shap_argv, folder, warm_env, inner)
        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(whole_process(ours_argv, folder, env, inner))
            theirs.append(whole_process(shap_argv, folder, env, inner))
        if args.importtime:
            importtime(ours_argv, folder, env)
    print(f"cold start, {args.trees} trees, 40 rows, median of {args.runs} paired processes"
          f"{'' if args.suite else f', backend {args.backend}'}"
          f"{' (no bytecode)' if args.no_bytecode else ''}")
    print(f"{'workload':<42} {'measure':<8} {'xaudit s':>9} {'shap s':>9} {'ratio':>6}")
    for measure in ("wall", "cpu"):
        a = statistics.median(float(run[measure] or 0.0) for run in ours)
        b = statistics.median(float(run[measure] or 0.0) for run in theirs)
        print(f"{label:<42} {measure:<8} {a:>9.2f} {b:>9.2f} {a / b:>6.2f}")
    for library in ("torch", "numba"):
        for side, runs in (("xaudit", ours), ("shap", theirs)):
            seen = [run[library] for run in runs if run[library] is not None]
            if seen:
                print(f"{library} imported by {side}: {'yes' if any(seen) else 'no'}")
    for side, runs in (("xaudit", ours), ("shap", theirs)):
        print(f"runs ({side}, wall/cpu s):", " ".join(
            f"{float(run['wall'] or 0):.2f}/{float(run['cpu'] or 0):.2f}" for run in runs))


if __name__ == "__main__":
    main()
