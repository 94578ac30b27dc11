"""The reference for ``bench_diff.py``: the five drift statistics of two saved runs, by hand.

What a platform engineer writes without ``xaudit diff``: read both runs' feature names
(``results.json``) and attributions (``arrays.npz``, one output, one explainer id) and compute,
with numpy and scipy only, Spearman's rho of mean |attribution|, the size of the symmetric
difference of the top-``k`` sets, the largest change of a feature's share of attribution, the
largest per-feature Wasserstein-1 distance over the approved run's total mean |attribution|,
and the count of sign flips of mean attribution among features holding at least ``min_share``
in both runs. Imports no xaudit, so a new process of it is a fair comparison with one of
``xaudit diff``.

    python benchmarks/diff_reference.py APPROVED CANDIDATE [K] [MIN_SHARE] [EXPLAINER_ID]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats


def load(folder: str | Path, explainer: str = "treeshap") -> tuple[list[str], np.ndarray]:
    """Feature names and the ``(rows, features)`` attributions of the first output."""
    names = json.loads((Path(folder) / "results.json").read_text())["data"]["feature_names"]
    values = np.load(Path(folder) / "arrays.npz")[f"explanations/{explainer}/values"]
    return list(names), values[..., 0]


def drift(before: np.ndarray, after: np.ndarray, k: int, min_share: float) -> dict[str, float]:
    """The five statistics, keyed by the xaudit check that computes each."""
    imp_b, imp_a = np.abs(before).mean(axis=0), np.abs(after).mean(axis=0)
    share_b, share_a = imp_b / imp_b.sum(), imp_a / imp_a.sum()
    top_b = set(np.argsort(-imp_b, kind="stable")[:k].tolist())
    top_a = set(np.argsort(-imp_a, kind="stable")[:k].tolist())
    w1 = [stats.wasserstein_distance(before[:, j], after[:, j]) for j in range(before.shape[1])]
    kept = (share_b >= min_share) & (share_a >= min_share)
    flips = kept & (np.sign(before.mean(axis=0)) * np.sign(after.mean(axis=0)) < 0)
    return {"drift.rank_correlation": float(stats.spearmanr(imp_b, imp_a).statistic),
            "drift.top_k": float(len(top_b ^ top_a)),
            "drift.share": float(np.abs(share_a - share_b).max()),
            "drift.distribution": float(max(w1) / imp_b.sum()),
            "drift.sign_flips": float(flips.sum())}


def main(argv: list[str]) -> None:
    """Print the statistics of the two runs as JSON."""
    k = int(argv[2]) if len(argv) > 2 else 5
    min_share = float(argv[3]) if len(argv) > 3 else 0.01
    explainer = argv[4] if len(argv) > 4 else "treeshap"
    (names_b, before), (names_a, after) = load(argv[0], explainer), load(argv[1], explainer)
    if names_a != names_b:
        raise SystemExit("the two runs' features differ; this reference compares equal ones")
    print(json.dumps(drift(before, after, k, min_share)))


if __name__ == "__main__":
    main(sys.argv[1:])
