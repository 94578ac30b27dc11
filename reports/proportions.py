"""Intervals and exact tests for proportions, for the fairness evidence.

- Wilson score interval of a binomial proportion (Wilson 1927, "Probable inference, the law of
  succession, and statistical inference", JASA 22): the set of ``p`` whose score test does not
  reject at the level, ``(p̂ + z²/2n ± z sqrt(p̂(1-p̂)/n + z²/4n²)) / (1 + z²/n)``; it stays in
  [0, 1] and keeps close to its nominal coverage for small ``n`` and rates near 0 or 1
  (Brown, Cai and DasGupta 2001, Statistical Science 16).
- Fisher's exact test of a 2 x 2 table (Fisher 1922; two-sided as usual: the probability, under
  the hypergeometric distribution with the table's margins, of every table no more likely than
  the one observed). Computed with exact integer binomial coefficients, so "no more likely" is
  an exact comparison, not a floating-point one.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` out of ``n`` (NaN, NaN when ``n`` is 0)."""
    if n == 0:
        return float("nan"), float("nan")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test of the table ``[[a, b], [c, d]]``."""
    row, column, total = a + b, a + c, a + b + c + d
    if total == 0:
        return 1.0
    low, high = max(0, column - (total - row)), min(row, column)

    def weight(x: int) -> int:  # proportional to the hypergeometric probability of x
        return math.comb(row, x) * math.comb(total - row, column - x)

    observed = weight(a)
    extreme = sum(w for x in range(low, high + 1) if (w := weight(x)) <= observed)
    return min(1.0, extreme / math.comb(total, column))
