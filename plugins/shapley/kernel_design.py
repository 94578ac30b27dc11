"""Which coalitions KernelSHAP evaluates, and with what weights: stratified paired sampling.

The Shapley kernel (Lundberg and Lee 2017) puts mass ``mu_s = (d-1) / (s (d-s))`` (normalised
over ``s = 1..d-1``) on the coalitions of size ``s``, spread evenly over the ``C(d, s)`` of them.
Coalitions are drawn in *pairs* ``(S, complement of S)`` (paired / antithetic sampling, Covert
and Lee 2021, "Improving KernelSHAP: Practical Shapley Value Estimation via Linear
Regression"), so the sizes ``s`` and ``d-s`` form one stratum of pairs. The budget of pairs is
shared between strata by water-filling:

* ``"leverage"`` (default): the same number of coalitions for every size, as in leverage-score
  sampling (Musco and Witter, ICLR 2025, "Provably Accurate Shapley Value Estimation via
  Leverage Score Sampling", whose leverage scores are uniform over sizes);
* ``"kernel"``: in proportion to the Shapley-kernel mass of the stratum (KernelSHAP's sampling
  distribution).

A stratum whose share covers all of its pairs is enumerated exactly (the smallest and largest
sizes first, as the reference implementation does) and the excess goes to the others; inside
the other strata, pairs are drawn uniformly *without replacement*. Each evaluated coalition
carries the weight ``mu_s / (number of coalitions of size s evaluated)``, so the weighted design
is an unbiased, stratified estimate of the Shapley-kernel measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import comb
from typing import Literal

import numpy as np

Allocation = Literal["leverage", "kernel"]
_INT64_SAFE = 2 ** 62


@dataclass(frozen=True)
class Design:
    """Coalitions of one row over ``d`` players.

    ``masks`` ``(m, d)`` bool and ``weights`` ``(m,)``; the first ``n_enumerated`` rows are the
    enumerated strata, then sampled pairs in adjacent rows ``(2j, 2j+1)`` after that offset.
    ``pair_stratum[j]`` is pair ``j``'s stratum; ``stratum_drawn[u]`` and ``stratum_total[u]``
    the pairs drawn from stratum ``u`` and the pairs it holds.
    """

    masks: np.ndarray
    weights: np.ndarray
    n_enumerated: int
    pair_stratum: np.ndarray
    stratum_drawn: np.ndarray
    stratum_total: np.ndarray


def size_mass(d: int) -> np.ndarray:
    """Shapley-kernel mass of each size ``s = 0..d`` (0 at both ends), summing to one."""
    s = np.arange(d + 1, dtype=np.float64)
    mass = np.zeros(d + 1)
    mass[1:d] = (d - 1) / (s[1:d] * (d - s[1:d]))
    return np.asarray(mass / mass.sum())


def strata_sizes(d: int) -> list[int]:
    """The smaller size ``s`` of each stratum ``{s, d-s}``, ``1 <= s <= d/2``."""
    return list(range(1, d // 2 + 1))


def pairs_in(d: int, s: int) -> int:
    """Distinct pairs ``(S, complement)`` with ``|S| = s`` (half of them when ``s = d-s``)."""
    return comb(d, s) // 2 if 2 * s == d else comb(d, s)


@lru_cache(maxsize=256)
def total_pairs(d: int) -> int:
    """Pairs over all proper non-empty coalitions: ``(2^d - 2) / 2``."""
    return sum(pairs_in(d, s) for s in strata_sizes(d))


def allocate(d: int, n_pairs: int, rule: Allocation) -> np.ndarray:
    """Pairs per stratum: water-filling of ``n_pairs``, enumerating strata their share covers."""
    sizes = strata_sizes(d)
    cap = np.array([min(pairs_in(d, s), _INT64_SAFE) for s in sizes], dtype=np.float64)
    mass = size_mass(d)
    if rule == "kernel":
        score = np.array([mass[s] + (mass[d - s] if 2 * s != d else 0.0) for s in sizes])
    else:
        score = np.array([1.0 if 2 * s == d else 2.0 for s in sizes])
    fixed = np.zeros(len(sizes), dtype=bool)
    share = np.zeros(len(sizes))
    while True:
        if fixed.all():
            break
        left = n_pairs - cap[fixed].sum()
        share = np.where(fixed, cap, left * score / score[~fixed].sum())
        newly = (~fixed) & (share >= cap)
        if not newly.any():
            break
        fixed |= newly
    counts = np.where(fixed, cap, np.floor(share)).astype(np.int64)
    spare = n_pairs - int(counts.sum())
    order = np.argsort(-(share - np.floor(share)) * ~fixed, kind="stable")
    for u in order[:max(0, spare)]:
        counts[u] = min(counts[u] + 1, int(cap[u]))
    # every sampled stratum gets two pairs at least (its variance needs two), taken from the
    # largest sampled ones
    for u in np.flatnonzero(counts < np.minimum(2, cap)):
        need = int(min(2, cap[u]) - counts[u])
        donor = int(np.argmax(np.where(counts < cap, counts, -1)))
        counts[u] += need
        counts[donor] -= need
    return counts


def _unrank(ranks: np.ndarray, d: int, s: int) -> np.ndarray:
    """Size-``s`` subsets of ``range(d)`` with lexicographic ranks ``ranks``, ``(n, d)`` bool."""
    r = ranks.astype(np.int64).copy()
    k = np.full(r.shape, s, dtype=np.int64)
    table = np.array([[comb(a, b) if b >= 0 else 0 for b in range(s + 1)] for a in range(d)],
                     dtype=np.int64)
    out = np.zeros((r.size, d), dtype=bool)
    for i in range(d):
        active = k > 0
        count = np.where(active, table[d - i - 1, np.maximum(k - 1, 0)], 0)
        take = active & (r < count)
        out[:, i] = take
        r = np.where(active & ~take, r - count, r)
        k = k - take
    return out


def _random_subsets(n: int, d: int, s: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct uniform size-``s`` subsets when ``C(d, s)`` is too large to rank."""
    found = np.zeros((0, d), dtype=bool)
    while found.shape[0] < n:
        keys = rng.random((2 * (n - found.shape[0]), d))
        picks = np.zeros(keys.shape, dtype=bool)
        np.put_along_axis(picks, np.argpartition(keys, s - 1, axis=1)[:, :s], True, axis=1)
        both = np.concatenate([found, picks])
        _, first = np.unique(np.packbits(both, axis=1), axis=0, return_index=True)
        found = both[np.sort(first)]
    return found[:n]


def _subsets(n: int, d: int, s: int, rng: np.random.Generator | None) -> np.ndarray:
    """``n`` distinct size-``s`` subsets: all of them (ranked order) when ``rng`` is None."""
    population = comb(d, s)
    if rng is None:
        return _unrank(np.arange(population, dtype=np.int64), d, s)
    if population >= _INT64_SAFE:
        return _random_subsets(n, d, s, rng)
    return _unrank(np.asarray(rng.choice(population, size=n, replace=False)), d, s)


def _pairs(n: int, d: int, s: int, rng: np.random.Generator | None) -> np.ndarray:
    """``n`` distinct pairs of stratum ``s`` as ``(2n, d)`` masks, ``S`` then its complement."""
    if 2 * s == d:  # each pair once: the member containing player 0
        rest = _subsets(n, d - 1, s - 1, rng)
        first = np.concatenate([np.ones((rest.shape[0], 1), dtype=bool), rest], axis=1)
    else:
        first = _subsets(n, d, s, rng)
    out = np.empty((2 * first.shape[0], d), dtype=bool)
    out[0::2], out[1::2] = first, ~first
    return out


def draw_design(d: int, n_samples: int, rule: Allocation,
                rng: np.random.Generator) -> Design:
    """The coalitions and weights for one row with ``d >= 2`` players and ``n_samples``."""
    sizes = strata_sizes(d)
    n_pairs = min(n_samples // 2, total_pairs(d))
    counts = allocate(d, n_pairs, rule)
    # capped: a stratum that large is never enumerated, and its correction is 1 - n/N ~ 1
    totals = np.array([min(pairs_in(d, s), _INT64_SAFE) for s in sizes], dtype=np.int64)
    mass = size_mass(d)
    enum_masks: list[np.ndarray] = []
    samp_masks: list[np.ndarray] = []
    pair_stratum: list[np.ndarray] = []
    for u, s in enumerate(sizes):
        if counts[u] == 0:
            continue
        full = counts[u] == totals[u]
        masks = _pairs(int(counts[u]), d, s, None if full else rng)
        (enum_masks if full else samp_masks).append(masks)
        if not full:
            pair_stratum.append(np.full(counts[u], u, dtype=np.int64))
    masks = np.concatenate(enum_masks + samp_masks, axis=0)
    n_enum = sum(m.shape[0] for m in enum_masks)
    msize = masks.sum(1)
    per_size = np.bincount(msize, minlength=d + 1)
    weights = mass[msize] / per_size[msize]
    return Design(masks, weights, n_enum,
                  np.concatenate(pair_stratum) if pair_stratum else np.zeros(0, np.int64),
                  counts, totals)
