"""``xaudit diff`` on the governance example against a plain scipy script, side by side.

The issue asks how long ``xaudit diff`` takes on ``examples/governance``; the reference is what a
platform engineer would write without it: ``diff_reference.py``, the five drift statistics of
both runs' ``arrays.npz`` by numpy and scipy, with the parameters the example's suite gives the
drift checks (top 3, sign flips of features holding at least 1%).

Workloads, on the approved run and the stumps candidate (same data, 40 explained rows of 10
features):

- ``xaudit diff`` as a user runs it (a new process: Python start, imports, loading, comparing,
  printing, writing ``comparison.json``) against the reference script in a new process;
- :func:`xaudit.comparison.compare` in process (both folders loaded in the timed call) against
  the reference's statistics in process. The error column is the largest absolute difference
  between our five drift values and the reference's.

    .venv/bin/python benchmarks/bench_diff.py [--runs DIR] [--only TEXT] [--json rows.json]

``--runs DIR`` holds ``approved/`` and ``stumps/`` as ``examples/governance/run.sh DIR`` writes
them; without it (or when they are missing) the two suites are run first into a temporary folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from xaudit.baseline import load_results
from xaudit.comparison import compare
from xaudit.host import create_host

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diff_reference import drift, load
from runner import Workload, run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "governance"
XAUDIT = Path(sys.executable).with_name("xaudit")
TOP_K, MIN_SHARE = 3, 0.01  # as examples/governance/*.yaml give drift.top_k and sign_flips


def _runs(folder: Path | None, scratch: Path) -> Path:
    """A folder with the approved and stumps runs of the example (run into ``scratch`` when
    ``folder`` lacks them)."""
    if folder is not None and (folder / "approved").is_dir() and (folder / "stumps").is_dir():
        return folder
    out = scratch / "runs"
    subprocess.run([str(XAUDIT), "run", str(EXAMPLE / "approved.yaml"), "--out",
                    str(out / "approved"), "-q"], check=True, capture_output=True)
    subprocess.run([str(XAUDIT), "run", str(EXAMPLE / "stumps.yaml"), "--out", str(out / "stumps"),
                    "--baseline", str(out / "approved"), "-q"], capture_output=True)  # exits 1
    return out


def _ours(runs: Path) -> dict[str, float]:
    host = create_host()
    baseline, _ = load_results(runs / "approved", "baseline")
    candidate, _ = load_results(runs / "stumps", "candidate")
    found = compare(baseline, candidate, host=host).drift
    return {f.check: float(f.value) for f in found if f.value is not None}


def _reference(runs: Path) -> dict[str, float]:
    (_, before), (_, after) = load(runs / "approved"), load(runs / "stumps")
    return drift(before, after, TOP_K, MIN_SHARE)


def _largest_difference(ours: dict[str, float], reference: dict[str, float]) -> float:
    return max(abs(ours[k] - reference[k]) for k in reference)


def workloads(runs: Path, out: Path) -> list[Workload]:
    """The two side-by-side measurements on the runs in ``runs`` (``comparison.json`` goes to
    ``out``)."""
    cli = [str(XAUDIT), "diff", str(runs / "approved"), str(runs / "stumps"), "--out", str(out)]
    script = [sys.executable, str(HERE / "diff_reference.py"), str(runs / "approved"),
              str(runs / "stumps"), str(TOP_K), str(MIN_SHARE)]
    return [
        Workload("xaudit diff, new process (example, stumps)",
                 lambda: subprocess.run(cli, check=True, capture_output=True),
                 lambda: subprocess.run(script, check=True, capture_output=True),
                 "numpy+scipy script"),
        Workload("compare(), in process (40 rows x 10 features)", lambda: _ours(runs),
                 lambda: _reference(runs), "numpy+scipy", error=_largest_difference,
                 error_label="max |diff|", repeats=5),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runs", type=Path)
    known, _ = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="bench-diff-") as scratch:
        runs = _runs(known.runs, Path(scratch))
        run(workloads(runs, Path(scratch) / "diff"), "xaudit diff vs a plain scipy script")
