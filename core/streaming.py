"""Summaries of attribution arrays computed a block of rows at a time.

An explanation's ``values`` ``(n, *feature_shape, n_outputs)`` can be larger than memory: one
loaded from a results folder that stored it out of core (:mod:`xaudit.result_store`) is a
memory-mapped array, and reading it whole would page all of it in and allocate temporaries of
its size. The reports and the summary read it through these functions instead, which touch
:func:`row_blocks` of at most :data:`BLOCK_BYTES` at a time, so peak memory is one block plus
the per-feature results.

The blocks depend on the array's shape only, never on how it is stored, so an in-memory run and
its results folder read back out of core give the same numbers bit for bit. Against numpy's
one-pass reductions over the whole array they agree to rounding (numpy sums pairwise).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

BLOCK_BYTES = 32 << 20
"""Largest block of rows read at once (at least one row)."""
SAMPLE_SEED = 20_240_917
"""Seed of :func:`sample_rows`: a fixed number, so a report re-rendered from a results folder
draws the same rows as the run that wrote it."""


def row_blocks(values: np.ndarray) -> Iterator[slice]:
    """Consecutive row ranges of ``values`` covering every row, each under :data:`BLOCK_BYTES`."""
    n = int(values.shape[0])
    row_bytes = max(1, math.prod(values.shape[1:]) * values.itemsize)
    step = max(1, BLOCK_BYTES // row_bytes)
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _rows(values: np.ndarray, rows: slice, slot: int | None) -> np.ndarray:
    """The block ``rows`` as ``(rows, features)`` for output ``slot``, or ``(rows, features,
    outputs)`` for ``slot=None``, in float64."""
    block = np.asarray(values[rows], dtype=np.float64)
    if slot is None:
        return block.reshape(block.shape[0], -1, block.shape[-1])
    return block[..., slot].reshape(block.shape[0], -1)


def abs_mean_se(values: np.ndarray, slot: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean |attribution| per feature for output ``slot`` and its standard error over rows
    (sample standard deviation / sqrt(n); zeros for one row).

    Blocks are merged with the pairwise update of Chan, Golub and LeVeque (1979), "Updating
    formulae and a pairwise algorithm for computing sample variances", which keeps the variance
    accurate where a running sum of squares would cancel.
    """
    count, mean, m2 = 0, np.zeros(0), np.zeros(0)
    for rows in row_blocks(values):
        block = np.abs(_rows(values, rows, slot))
        size, block_mean = block.shape[0], block.mean(axis=0)
        block_m2 = ((block - block_mean) ** 2).sum(axis=0)
        if count == 0:
            count, mean, m2 = size, block_mean, block_m2
            continue
        total = count + size
        delta = block_mean - mean
        mean = mean + delta * (size / total)
        m2 = m2 + block_m2 + delta ** 2 * (count * size / total)
        count = total
    if count < 2:
        return mean, np.zeros_like(mean)
    return mean, np.sqrt(m2 / (count - 1)) / np.sqrt(count)


def signed_mean(values: np.ndarray, slot: int) -> np.ndarray:
    """Mean attribution per feature for output ``slot`` (signs kept)."""
    total = np.zeros(0)
    for rows in row_blocks(values):
        part = _rows(values, rows, slot).sum(axis=0)
        total = part if total.size == 0 else total + part
    return total / max(int(values.shape[0]), 1)


def abs_mean_over_outputs(values: np.ndarray) -> np.ndarray:
    """Mean |attribution| per feature over rows, summed over the outputs: ``(features,)``."""
    total = np.zeros(0)
    for rows in row_blocks(values):
        part = np.abs(_rows(values, rows, None)).sum(axis=0)
        total = part if total.size == 0 else total + part
    return np.asarray(total.sum(axis=-1)) / max(int(values.shape[0]), 1)


def abs_max(values: np.ndarray, slot: int) -> np.ndarray:
    """Largest |attribution| per feature for output ``slot``."""
    peak = np.zeros(0)
    for rows in row_blocks(values):
        part = np.abs(_rows(values, rows, slot)).max(axis=0)
        peak = part if peak.size == 0 else np.asarray(np.maximum(peak, part))
    return peak


def row_totals(values: np.ndarray) -> np.ndarray:
    """Sum of each row's attributions over the features, per output: ``(n, n_outputs)``."""
    out = np.empty((int(values.shape[0]), int(values.shape[-1])))
    for rows in row_blocks(values):
        out[rows] = _rows(values, rows, None).sum(axis=1)
    return out


def group_abs_means(values: np.ndarray, slot: int, groups: np.ndarray,
                    n_groups: int) -> np.ndarray:
    """Mean |attribution| per feature within each group: ``(n_groups, features)``.

    ``groups`` holds each row's group number in ``[0, n_groups)``; a group without rows gets
    zeros.
    """
    groups = np.asarray(groups, dtype=np.int64)
    sums: np.ndarray | None = None
    for rows in row_blocks(values):
        block = np.abs(_rows(values, rows, slot))
        if sums is None:
            sums = np.zeros((n_groups, block.shape[1]))
        np.add.at(sums, groups[rows], block)
    counts = np.bincount(groups, minlength=n_groups).astype(np.float64)
    if sums is None:
        return np.zeros((n_groups, 0))
    return sums / np.maximum(counts, 1.0)[:, None]


def bootstrap_abs_means(values: np.ndarray, slot: int, n_boot: int,
                        rng: np.random.Generator) -> np.ndarray:
    """Mean |attribution| per feature for output ``slot`` on ``n_boot`` resamples of the rows
    (with replacement): ``(n_boot, features)``.

    Resample ``b`` draws ``rng.integers(0, n, size=n)``, the same numbers as row ``b`` of one
    ``(n_boot, n)`` draw; its row counts weight each block of rows, so memory is the counts
    (``n_boot x n`` small integers) and one block, never the ``n_boot x n x features`` gather.
    """
    n = int(values.shape[0])
    counts = np.empty((n_boot, n), dtype=np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32)
    for b in range(n_boot):
        counts[b] = np.bincount(rng.integers(0, n, size=n), minlength=n)
    sums: np.ndarray | None = None
    for rows in row_blocks(values):
        part = counts[:, rows].astype(np.float64) @ np.abs(_rows(values, rows, slot))
        sums = part if sums is None else sums + part
    if sums is None:
        return np.zeros((n_boot, 0))
    return sums / max(n, 1)


def sample_rows(n: int, limit: int) -> np.ndarray:
    """Up to ``limit`` row numbers of ``n``, sorted: all rows when ``n <= limit``, else a
    uniform sample without replacement drawn with :data:`SAMPLE_SEED`."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(n, size=limit, replace=False))

