"""Are the explained rows like the rows the model learnt from? Per feature, side by side.

For each tabular feature, the training, test and explained rows are summarised (rows, missing
values, mean, standard deviation, quantiles; for a categorical feature the share of each
category) and compared with a two-sample statistic, training against explained rows and
training against test rows:

- numeric features: the two-sample Kolmogorov-Smirnov statistic ``D = sup |F_1(x) - F_2(x)|``
  (Kolmogorov 1933, Smirnov 1948) and its two-sided p-value, computed by
  ``scipy.stats.ks_2samp`` (imported when a run reaches this point, never when the host is
  created; exact for small samples, asymptotic once the product of the two sample sizes
  passes :data:`EXACT_PAIRS`);
- categorical features (declared ``categorical``, text, or six or fewer distinct numbers, the
  rule :func:`xaudit.reports.decisions.segment_labels` uses for segments): the total-variation
  distance ``TV = 1/2 sum_c |p_1(c) - p_2(c)|`` between the category shares and Pearson's
  chi-square test of homogeneity of the 2 x C table of counts (``scipy.stats.chi2_contingency``,
  without Yates' continuity correction).

Missing values (NaN, empty text) are counted and left out of every statistic. The p-values
assume the two samples are independent: explained rows drawn from the training rows are not,
and the report says so. Only tables of at most :data:`MAX_FEATURES` features are summarised
(an image's pixels are not features a validator reads one by one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

MAX_FEATURES = 100
"""Tables with more features are not summarised feature by feature."""
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""The quantiles shown per pool (numpy's default linear interpolation)."""
MAX_DISTINCT_CODES = 6
"""A numeric feature with this many distinct values or fewer is treated as categorical."""
MAX_CATEGORIES = 12
"""Categories listed per pool (the most frequent in the training rows); all are tested."""
EXACT_PAIRS = 1_000_000
"""KS p-values are exact (scipy's ``auto``) up to this product of the two sample sizes, and
asymptotic beyond it (the exact computation grows with the product)."""
MAX_TESTED_CATEGORIES = 50
"""A feature with more categories (free text, identifiers) is summarised but not tested."""
MISSING_TEXT = ("", "nan", "None")
POOLS = ("train", "test", "explained")
COMPARISONS = (("train", "explained"), ("train", "test"))


@dataclass(frozen=True)
class PoolSummary:
    """One feature over one pool of rows."""

    rows: int
    missing: int
    mean: float | None = None
    sd: float | None = None
    """Sample standard deviation (ddof 1); ``None`` below two values."""
    quantiles: list[float] = field(default_factory=list)
    """At :data:`QUANTILES`, over the values present."""
    shares: dict[str, float] = field(default_factory=dict)
    """Categorical features: each listed category's share of the values present."""


@dataclass(frozen=True)
class Comparison:
    """Two pools of one feature compared: ``first`` (the training rows) against ``second``."""

    first: str
    second: str
    test: str
    """``ks`` (Kolmogorov-Smirnov) or ``chi2`` (chi-square of homogeneity)."""
    statistic: float | None
    """``D`` for ``ks``, the chi-square statistic for ``chi2``; ``None`` if a pool is empty."""
    p_value: float | None
    distance: float | None
    """``D`` for ``ks``, the total-variation distance for ``chi2``."""


@dataclass(frozen=True)
class FeatureRepresentativeness:
    """One feature's pools and comparisons."""

    feature: str
    kind: str
    """``numeric`` or ``categorical``."""
    pools: dict[str, PoolSummary]
    comparisons: list[Comparison]


def representativeness(X: np.ndarray, feature_names: tuple[str, ...] | list[str],
                       categorical: tuple[str, ...] | list[str],
                       rows: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The JSON-ready record of every feature of the table ``X`` over the pools ``rows``
    (``train``, ``test``, ``explained`` row indices), or the reason there is none."""
    if X.ndim != 2 or X.shape[1] != len(feature_names):
        return {"skipped": "the rows are not a table of named features"}
    if X.shape[1] > MAX_FEATURES:
        return {"skipped": f"{X.shape[1]} features (more than {MAX_FEATURES}) are not "
                           "summarised one by one"}
    declared = set(categorical)
    features = [_feature(name, X[:, j], name in declared, rows)
                for j, name in enumerate(feature_names)]
    return {"pools": list(rows), "quantiles": list(QUANTILES),
            "features": [asdict(f) for f in features]}


def _feature(name: str, column: np.ndarray, declared: bool,
             rows: Mapping[str, np.ndarray]) -> FeatureRepresentativeness:
    values = _numeric(column)
    if values is not None and not declared and \
            np.unique(values[~np.isnan(values)]).size > MAX_DISTINCT_CODES:
        samples = {pool: values[index] for pool, index in rows.items()}
        return FeatureRepresentativeness(
            name, "numeric", {p: _numeric_summary(v) for p, v in samples.items()},
            [_ks(samples, a, b) for a, b in COMPARISONS if a in samples and b in samples])
    text = _codes(column)
    present = text[text != None]  # noqa: E711 - elementwise over an object array
    order = _category_order(present, text[rows["train"]] if "train" in rows else present)
    labelled = {pool: text[index] for pool, index in rows.items()}
    return FeatureRepresentativeness(
        name, "categorical", {p: _category_summary(v, order) for p, v in labelled.items()},
        [_chi2(labelled, order, a, b) for a, b in COMPARISONS
         if a in labelled and b in labelled])


def _numeric(column: np.ndarray) -> np.ndarray | None:
    try:
        return np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _codes(column: np.ndarray) -> np.ndarray:
    """Each value as the text a category is known by (``None`` when missing)."""
    out = np.empty(column.shape[0], dtype=object)
    for i, value in enumerate(column.tolist()):
        if isinstance(value, float) and np.isnan(value):
            out[i] = None
        else:
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            out[i] = None if text in MISSING_TEXT else text
    return out


def _category_order(present: np.ndarray, train: np.ndarray) -> list[str]:
    """Every category, most frequent in the training rows first (ties by text)."""
    counts = Counter(str(v) for v in train.tolist() if v is not None)
    return sorted({str(c) for c in present.tolist()}, key=lambda c: (-counts[c], c))


def _numeric_summary(values: np.ndarray) -> PoolSummary:
    present = values[~np.isnan(values)]
    missing = int(values.size - present.size)
    if present.size == 0:
        return PoolSummary(int(values.size), missing)
    return PoolSummary(
        int(values.size), missing, float(present.mean()),
        float(present.std(ddof=1)) if present.size > 1 else None,
        [float(q) for q in np.quantile(present, QUANTILES)])


def _category_summary(text: np.ndarray, order: list[str]) -> PoolSummary:
    counts = Counter(str(v) for v in text.tolist() if v is not None)
    present = sum(counts.values())
    shares = {c: (counts[c] / present if present else 0.0) for c in order[:MAX_CATEGORIES]}
    return PoolSummary(int(text.size), int(text.size) - present, shares=shares)


def _ks(samples: Mapping[str, np.ndarray], first: str, second: str) -> Comparison:
    a, b = (samples[p][~np.isnan(samples[p])] for p in (first, second))
    if a.size == 0 or b.size == 0:
        return Comparison(first, second, "ks", None, None, None)
    from scipy.stats import ks_2samp  # lazily: never when the host is created

    found = ks_2samp(a, b, method="auto" if a.size * b.size <= EXACT_PAIRS else "asymp")
    return Comparison(first, second, "ks", float(found.statistic), float(found.pvalue),
                      float(found.statistic))


def _chi2(labelled: Mapping[str, np.ndarray], order: list[str], first: str,
          second: str) -> Comparison:
    counted = [Counter(str(v) for v in labelled[p].tolist() if v is not None)
               for p in (first, second)]
    table = np.array([[c[name] for name in order] for c in counted], dtype=np.float64)
    totals = table.sum(axis=1)
    if np.any(totals == 0) or len(order) > MAX_TESTED_CATEGORIES:
        return Comparison(first, second, "chi2", None, None, None)
    distance = float(0.5 * np.abs(table[0] / totals[0] - table[1] / totals[1]).sum())
    seen = table.sum(axis=0) > 0
    if seen.sum() < 2:  # one category in both pools: identical, nothing to test
        return Comparison(first, second, "chi2", 0.0, 1.0, distance)
    from scipy.stats import chi2_contingency  # lazily: never when the host is created

    found = chi2_contingency(table[:, seen], correction=False)
    return Comparison(first, second, "chi2", float(found.statistic), float(found.pvalue),
                      distance)
