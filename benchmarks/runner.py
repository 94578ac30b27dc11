"""One runner for every benchmark: our figure beside the reference library's, in one run.

A :class:`Workload` pairs two zero-argument callables (ours and the reference's) that do the
same job on the same inputs. :func:`run` times each (best of ``repeats`` after one warm-up
call, unless ``warmup=False``), computes an optional error between the two results, and prints
one table row per workload: our time, the reference's, the ratio ours/reference (below 1 is
faster), the target ratio, and the error. ``--json PATH`` on the command line of any benchmark
script also writes the rows as JSON.

Timings are wall-clock on whatever machine runs them; the ratio is the figure to compare,
since both sides run in the same process, back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Workload:
    """One side-by-side measurement.

    ``error`` receives (our result, the reference's result) and returns a number to print
    (e.g. a relative L2 error against an exact oracle); ``extra`` adds named figures.
    """

    name: str
    ours: Callable[[], Any]
    reference: Callable[[], Any] | None
    reference_name: str
    target_ratio: float | None = None
    error: Callable[[Any, Any], float] | None = None
    error_label: str = "error"
    repeats: int = 3
    warmup: bool = True
    extra: Callable[[Any, Any], dict[str, float]] | None = None


@dataclass
class Row:
    """What :func:`run` measured for one workload."""

    name: str
    reference_name: str
    ours_s: float
    reference_s: float | None
    ratio: float | None
    target_ratio: float | None
    meets_target: bool | None
    error_label: str
    error: float | None
    extra: dict[str, float] = field(default_factory=dict)


def best_time(fn: Callable[[], Any], repeats: int, warmup: bool) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls (after a warm-up call) and the last result."""
    if warmup:
        fn()
    best, result = float("inf"), None
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def measure(workload: Workload) -> Row:
    """Time both sides of ``workload`` and compare their results."""
    ours_s, ours = best_time(workload.ours, workload.repeats, workload.warmup)
    ref_s, ref = (None, None)
    if workload.reference is not None:
        ref_s, ref = best_time(workload.reference, workload.repeats, workload.warmup)
    ratio = ours_s / ref_s if ref_s else None
    meets = None if ratio is None or workload.target_ratio is None else (
        ratio <= workload.target_ratio)
    error = workload.error(ours, ref) if workload.error is not None else None
    extra = workload.extra(ours, ref) if workload.extra is not None else {}
    return Row(workload.name, workload.reference_name, ours_s, ref_s, ratio,
               workload.target_ratio, meets, workload.error_label, error, extra)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_rows(rows: Sequence[Row], title: str) -> None:
    """A fixed-width table of ``rows``."""
    print(f"\n== {title} ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpu) ==")
    header = (f"{'workload':<48} {'xaudit s':>9} {'ref s':>9} {'ratio':>6} {'target':>6} "
              f"{'ok':>3}  error / extra")
    print(header)
    print("-" * len(header))
    for row in rows:
        ok = "-" if row.meets_target is None else ("yes" if row.meets_target else "NO")
        notes = []
        if row.error is not None:
            notes.append(f"{row.error_label}={row.error:.4g}")
        notes.extend(f"{k}={v:.4g}" for k, v in row.extra.items())
        print(f"{row.name[:48]:<48} {row.ours_s:>9.4f} {_fmt(row.reference_s, '9.4f'):>9} "
              f"{_fmt(row.ratio, '6.3f'):>6} {_fmt(row.target_ratio, '6.2f'):>6} {ok:>3}  "
              f"[{row.reference_name}] " + " ".join(notes))


def run(workloads: Sequence[Workload], title: str,
        argv: Sequence[str] | None = None) -> list[Row]:
    """Measure and print every workload; ``--json PATH`` writes the rows too."""
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--only", help="run only workloads whose name contains this text")
    args, _ = parser.parse_known_args(argv)
    chosen = [w for w in workloads if not args.only or args.only in w.name]
    rows = []
    for workload in chosen:
        rows.append(measure(workload))
        print(f"  measured {workload.name}", flush=True)
    print_rows(rows, title)
    if args.json:
        write_json(rows, args.json)
    return rows


def write_json(rows: Sequence[Row], path: str) -> None:
    """Write ``rows`` as a JSON list (what ``--json PATH`` asks for)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump([asdict(r) for r in rows], handle, indent=2)
