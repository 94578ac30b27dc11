"""How much an explanation's top features move when only the seed changes.

A fixed seed makes a stochastic explainer (LIME, KernelSHAP, SmoothGrad) reproducible, not
stable. :func:`top_k_stability` compares the top-``k`` features of one row explained several
times (Kendall's tau-b of their ranks, Jaccard index of the sets); :func:`stability_over_seeds`
reruns an explainer from its own seed (the ``stability_runs`` figures of ``lime.tabular``);
:func:`seed_stability` does it from the public API for any method (lime#389, lime#767).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xaudit.errors import InputError
from xaudit.plugins._support.statistics import kendall_tau


def top_k_stability(weights: np.ndarray, top_k: int = 5) -> dict[str, float]:
    """How stable the top-``k`` features of one explanation are across runs.

    ``weights`` is ``(runs, d)``: the same row and output explained with different seeds. For
    every pair of runs, the features in either run's top ``k`` (by absolute weight) are ranked
    by absolute weight in each run, and Kendall's tau-b compares the two rankings; the Jaccard
    index compares the two top-``k`` sets. Returns the mean and minimum over pairs of both, and
    the share of runs whose top ``k`` equals the most frequent top ``k``.
    """
    W = np.abs(np.asarray(weights, dtype=np.float64))
    if W.ndim != 2 or W.shape[0] < 2:
        raise InputError(f"top_k_stability needs (runs >= 2, d) weights; got {W.shape}")
    k = min(top_k, W.shape[1])
    tops = [frozenset(np.argsort(-w, kind="stable")[:k].tolist()) for w in W]
    taus, jaccards = [], []
    for a in range(len(W)):
        for b in range(a + 1, len(W)):
            union = np.asarray(sorted(tops[a] | tops[b]))
            taus.append(kendall_tau(W[a, union], W[b, union]))
            jaccards.append(len(tops[a] & tops[b]) / len(tops[a] | tops[b]))
    modal = max(set(tops), key=tops.count)
    return {"rank_correlation": float(np.nanmean(taus)), "rank_correlation_min":
            float(np.nanmin(taus)), "top_k_jaccard": float(np.mean(jaccards)),
            "top_k_jaccard_min": float(np.min(jaccards)),
            "top_k_agreement": tops.count(modal) / len(tops), "top_k": float(k),
            "runs": float(len(W))}


def seed_stability(model: object, X: np.ndarray, *, method: str = "lime.tabular",
                   seeds: int | list[int] = 10, top_k: int = 5, background: object = None,
                   target: Any = None, **params: Any) -> list[dict[str, float]]:
    """Explain ``X`` once per seed (``seeds``: a count, meaning ``0 .. seeds-1``, or a list)
    and report :func:`top_k_stability` for every row and targeted output (row-major list of
    dicts, each with its ``row`` and ``slot``). This is the stability figure the LIME docs
    quote (lime#389, lime#767: a fixed seed fixes the explanation; this measures how much it
    would move under another)."""
    import xaudit

    chosen = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    runs = [xaudit.explain(model, X, method=method, background=background, seed=s,
                           target=target, **params).values for s in chosen]
    stacked = np.stack(runs)  # (runs, n, *feature_shape, k)
    n, k = stacked.shape[1], stacked.shape[-1]
    flat = stacked.reshape(len(chosen), n, -1, k)
    out = []
    for r in range(n):
        for j in range(k):
            out.append({"row": float(r), "slot": float(j),
                        **top_k_stability(flat[:, r, :, j], top_k)})
    return out


def stability_over_seeds(values: np.ndarray, rerun: Callable[[np.random.Generator], np.ndarray],
                         runs: int, top_k: int, rng: np.random.Generator) -> list[dict[str, float]]:
    """:func:`top_k_stability` of each row and output slot of ``values`` ``(n, d, k)`` over
    ``runs`` explanations: ``values`` and ``runs - 1`` reruns, each with a generator seeded
    from ``rng`` (so the figures are themselves fixed by the explanation's seed)."""
    seeds = rng.integers(0, 2**63 - 1, size=max(0, runs - 1))
    stacked = np.stack([values, *(rerun(np.random.default_rng(int(s))) for s in seeds)])
    n, k = values.shape[0], values.shape[-1]
    flat = stacked.reshape(stacked.shape[0], n, -1, k)
    return [{"row": float(r), "slot": float(j), **top_k_stability(flat[:, r, :, j], top_k)}
            for r in range(n) for j in range(k)]
