"""Out-of-core attributions (issue 19, item 3): saving and loading through ``arrays.zarr.zip``
against ``arrays.npz``, and against zarr itself writing the same array.

Each measurement runs in a fresh process, which builds a ``rows x 20 x 1`` float64 explanation
and reports the wall time and the growth of its peak resident memory (``ru_maxrss``) during the
measured step only:

* ``save npz``: ``AuditResult.save`` with no bound (``np.savez_compressed`` in memory);
* ``save zarr``: the same with ``report.out_of_core_mb`` below the array's size;
* ``zarr direct``: the reference, ``zarr.create_array`` on a ``ZipStore`` assigned the whole array
  with the same chunks and codec (what a user of zarr would write by hand);
* ``load+summary``: ``AuditResult.load`` then the report's mean |attribution| per feature
  (:func:`xaudit.streaming.abs_mean_se`), from each folder.

    .venv/bin/python benchmarks/bench_out_of_core.py [--rows 500000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

STEP = r"""
import json, resource, sys, time
import numpy as np
from xaudit.explanation import Explanation
from xaudit.results import AuditResult
from xaudit.streaming import abs_mean_se
kind, rows, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def build(bound):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(rows, 20, 1))
    e = Explanation(method="m", values=values, base_values=np.zeros((rows, 1)),
                    feature_names=tuple(f"f{i}" for i in range(20)), output_names=("y",),
                    target_indices=np.zeros((rows, 1), int), inputs=np.zeros((rows, 20)))
    report = {} if bound is None else {"out_of_core_mb": bound}
    return AuditResult(suite_name="b", suite={"name": "b", "report": report}, model={},
                       data={}, explanations={"e": e})

if kind.startswith("save"):
    result = build(None if kind == "save-npz" else 1.0)
    if kind == "save-zarr":
        import zarr  # imported before the measured step, as in the direct reference
elif kind == "zarr-direct":
    import zarr
    from xaudit.result_store import CHUNK_BYTES
    values = build(None).explanations["e"].values
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if kind.startswith("save"):
    result.save(folder)
elif kind == "zarr-direct":
    store = zarr.storage.ZipStore(folder + "/direct.zip", mode="w")
    array = zarr.create_array(store, shape=values.shape, dtype="float64",
                            chunks=(max(1, CHUNK_BYTES // (20 * 8)), 20, 1),
                            compressors=zarr.codecs.ZstdCodec(level=3))
    array[:] = values
    store.close()
else:
    scores = abs_mean_se(AuditResult.load(folder).explanations["e"].values, 0)[0]
seconds = time.perf_counter() - started
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"seconds": seconds, "peak_growth_mib": grown / 1024}))
"""


def measure(kind: str, rows: int, folder: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", STEP, kind, str(rows), str(folder)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500_000)
    rows = parser.parse_args().rows
    print(f"{rows} rows x 20 features x 1 output: {rows * 20 * 8 / 2**20:.0f} MiB of values")
    with tempfile.TemporaryDirectory() as scratch:
        npz, ooc, direct = (Path(scratch) / name for name in ("npz", "zarr", "direct"))
        direct.mkdir()
        table = {
            "save npz": measure("save-npz", rows, npz),
            "save zarr": measure("save-zarr", rows, ooc),
            "zarr direct (reference)": measure("zarr-direct", rows, direct),
            "load+summary npz": measure("load-summary", rows, npz),
            "load+summary zarr": measure("load-summary", rows, ooc),
        }
        sizes = {name: sum(p.stat().st_size for p in folder.iterdir())
                 for name, folder in (("npz", npz), ("zarr", ooc))}
    for name, row in table.items():
        print(f"{name:26s} {row['seconds']:7.2f} s   peak +{row['peak_growth_mib']:7.1f} MiB")
    print(f"save zarr / zarr direct: {table['save zarr']['seconds'] / table['zarr direct (reference)']['seconds']:.2f}x time")  # noqa: E501
    print(f"folder bytes: npz {sizes['npz'] / 2**20:.1f} MiB, zarr {sizes['zarr'] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
