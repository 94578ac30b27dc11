"""The explanation cache on the example audit: a second run with an unchanged model.

The diabetes example (``examples/diabetes/audit.yaml``: TreeSHAP, KernelSHAP, LIME,
permutation importance, partial dependence, counterfactuals) is run in one process: once to
warm up (imports, JIT compilation), once without a cache, then twice through one new, empty
cache folder (the first run fills it, the second finds every explanation there). Explainer
time is what the results record for a run through the cache: the whole of each explainer's
cache lookup, computation and store (``provenance.cache.explainers.*.seconds``).

Rows: the warm run's explainer time against the cold run's (issue 14's target: at most 0.20),
beside both whole-run times (checks included: they re-run explainers and are not cached) and
the largest difference between the warm run's attributions and the uncached run's (0 when
identical); then the cold run's whole time against the uncached run's (what filling the cache
costs: keys, digests and writes).

    nice .venv/bin/python benchmarks/bench_cache.py [--json rows.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import xaudit
from xaudit.results import AuditResult

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import Row, print_rows, write_json

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diabetes" / "audit.yaml"
TARGET = 0.20


def _run(cache: Path | None) -> tuple[AuditResult, float]:
    started = time.perf_counter()
    result = xaudit.run_suite(EXAMPLE, cache=cache)
    sys.modules.pop("models", None)  # the example's factory module, found by name
    return result, time.perf_counter() - started


def explainer_seconds(result: AuditResult) -> float:
    """Explainer time through the cache, as the results record it."""
    return float(sum(r["seconds"] for r in result.provenance["cache"]["explainers"].values()))


def largest_difference(a: AuditResult, b: AuditResult) -> float:
    """max |a - b| over every explanation's values and base values."""
    worst = 0.0
    for key, explanation in a.explanations.items():
        other = b.explanations[key]
        worst = max(worst, float(np.max(np.abs(explanation.values - other.values))))
        if explanation.base_values is not None and other.base_values is not None:
            worst = max(worst, float(np.max(np.abs(explanation.base_values -
                                                   other.base_values))))
    return worst


def main(argv: list[str] | None = None) -> list[Row]:
    """Measure and print the two rows; ``--json PATH`` writes them too."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    _run(None)  # warm-up: imports and JIT compilation would be charged to the first run
    with tempfile.TemporaryDirectory(prefix="xaudit-bench-cache-") as folder:
        plain, plain_s = _run(None)
        cold, cold_s = _run(Path(folder))
        warm, warm_s = _run(Path(folder))
    hits = sum(r["hit"] for r in warm.provenance["cache"]["explainers"].values())
    rows = [
        _row("second run, unchanged model (cache hits)", explainer_seconds(warm),
             "first run (fills the cache)", explainer_seconds(cold), TARGET,
             {"hits": float(hits), "run_s": warm_s, "ref_run_s": cold_s,
              "max_abs_diff_vs_uncached": largest_difference(warm, plain)}),
        _row("whole run, first through an empty cache", cold_s, "whole run, no cache", plain_s,
             None, {}),
    ]
    print_rows(rows, "explanation cache, examples/diabetes/audit.yaml (explainer seconds)")
    if args.json:
        write_json(rows, args.json)
    return rows


def _row(name: str, ours: float, reference_name: str, reference: float, target: float | None,
         extra: dict[str, Any]) -> Row:
    ratio = ours / reference if reference else None
    meets = None if ratio is None or target is None else ratio <= target
    return Row(name, reference_name, ours, reference, ratio, target, meets, "error", None, extra)


if __name__ == "__main__":
    main()
