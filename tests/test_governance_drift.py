"""Drift checks against scipy and brute force, on explanations made by hand.

Every statistic is recomputed here from the attribution arrays with an independent tool:
scipy's ``spearmanr``, ``kendalltau`` and ``wasserstein_distance``, or a plain Python loop over
features and sets. The explanations are random arrays, so nothing depends on a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from scipy import stats

import xaudit
from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.handoff import Handoff
from xaudit.plugin import Baseline, BaselineCheck
from xaudit.plugins._support.statistics import wasserstein_1

HOST = xaudit.create_host(autoload=False)
NAMES = ("age", "bmi", "bp", "s1", "s2", "s5")


def explanation(values: np.ndarray, names: Sequence[str] = NAMES,
                outputs: Sequence[str] = ("y",), kind: str = "attribution") -> Explanation:
    """An explanation of ``values`` ``(n, d)`` or ``(n, d, k)`` (inputs are not read)."""
    values = values[..., None] if values.ndim == 2 else values
    n, d, k = values.shape
    return Explanation(method="shap.tree", values=values, base_values=np.zeros((n, k)),
                       feature_names=tuple(names), output_names=tuple(outputs),
                       target_indices=np.tile(np.arange(k), (n, 1)), inputs=np.zeros((n, d)),
                       handoff=Handoff(kind=kind))  # type: ignore[arg-type]  # a str


def drift(name: str, now: Explanation, before: Explanation, *, rows: tuple[np.ndarray,
          np.ndarray] | None = None, feature_changes: bool = False,
          **params: object) -> xaudit.CheckResult:
    """``name`` through :func:`xaudit.check` (a model is required there; it is never called)."""
    model = xaudit.adapt(lambda X: X.sum(axis=1), host=HOST)
    return xaudit.check(name, model, now, host=HOST,
                        baseline=Baseline(before, rows, feature_changes), **params)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """Two runs' attributions of 30 rows over six features, the second a noisy re-weighting."""
    rng = np.random.default_rng(3)
    before = rng.normal(size=(30, 6)) * np.array([3.0, 2.0, 1.5, 1.0, 0.5, 0.2])
    after = before * np.array([0.2, 1.0, 1.8, -1.0, 2.0, 1.0]) + rng.normal(0, 0.3, (30, 6))
    after[:, 3] += 2.5  # s1 pushes up on average now
    before[:, 3] -= 1.0
    return before, after


def test_wasserstein_1_equals_scipy() -> None:
    rng = np.random.default_rng(0)
    cases = [(rng.normal(size=40), rng.normal(1.0, 2.0, size=25)),
             (np.round(rng.normal(size=30), 1), np.round(rng.normal(size=30), 1)),  # ties
             (np.zeros(10), rng.exponential(size=7)),
             (np.array([1.0]), np.array([4.0, 4.0, -2.0]))]
    for u, v in cases:
        assert wasserstein_1(u, v) == pytest.approx(stats.wasserstein_distance(u, v), rel=1e-12,
                                                    abs=1e-15)
    assert wasserstein_1(np.ones(3), np.ones(5)) == 0.0


@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_rank_correlation_equals_scipy(pair: tuple[np.ndarray, np.ndarray], method: str) -> None:
    before, after = pair
    after = after.copy()
    after[:, 4] = after[:, 0]  # a tie in mean |attribution|
    result = drift("drift.rank_correlation", explanation(after), explanation(before),
                   method=method)
    a, b = np.abs(before).mean(axis=0), np.abs(after).mean(axis=0)
    oracle = stats.spearmanr(a, b).statistic if method == "spearman" else \
        stats.kendalltau(a, b).statistic
    assert result.value == pytest.approx(oracle, rel=1e-12)
    ranks = result.details["ranks_after"]
    assert [name for name, _ in sorted(ranks.items(), key=lambda kv: kv[1])] == [
        NAMES[j] for j in np.lexsort((np.arange(6), -b))]


def test_top_k_counts_features_new_to_or_missing_from_the_top(
        pair: tuple[np.ndarray, np.ndarray]) -> None:
    before, after = pair
    for k in (1, 2, 3, 5, 6):
        result = drift("drift.top_k", explanation(after), explanation(before), k=k)
        mean_before, mean_after = np.abs(before).mean(axis=0), np.abs(after).mean(axis=0)
        top_before = {NAMES[j] for j in np.argsort(-mean_before)[:k]}
        top_after = {NAMES[j] for j in np.argsort(-mean_after)[:k]}
        assert result.value == len(top_before ^ top_after)
        assert set(result.details["entered"]) == top_after - top_before
        assert set(result.details["left"]) == top_before - top_after
        union = top_before | top_after
        assert result.details["jaccard"] == pytest.approx(len(top_before & top_after) / len(union))


def test_a_feature_without_attribution_never_enters_the_top_k() -> None:
    rng = np.random.default_rng(1)
    before = np.abs(rng.normal(size=(10, 6))) * np.array([50.0, 40.0, 30.0, 20.0, 1.0, 0.5])
    after = before.copy()
    after[:, 2:] = 0.0  # only two features are used now
    result = drift("drift.top_k", explanation(after), explanation(before), k=4)
    assert result.details["top_after"] == [NAMES[j] for j in np.argsort(
        -np.abs(after[:, :2]).mean(axis=0))]
    assert result.value == 2  # two features left the top 4, none entered


def test_share_is_the_largest_change_of_a_share(pair: tuple[np.ndarray, np.ndarray]) -> None:
    before, after = pair
    result = drift("drift.share", explanation(after), explanation(before))
    share_before = np.abs(before).mean(axis=0) / np.abs(before).mean(axis=0).sum()
    share_after = np.abs(after).mean(axis=0) / np.abs(after).mean(axis=0).sum()
    changes = {name: abs(share_after[j] - share_before[j]) for j, name in enumerate(NAMES)}
    worst = max(changes, key=lambda name: changes[name])
    assert result.value == pytest.approx(changes[worst], rel=1e-12)
    assert result.details["feature"] == worst
    assert result.handoff.statements[0].startswith(
        f"{worst} now holds {share_after[NAMES.index(worst)]:.0%} of attribution (")


@pytest.mark.parametrize("scale", ["total", "none"])
def test_distribution_is_scipy_wasserstein_per_feature(pair: tuple[np.ndarray, np.ndarray],
                                                       scale: str) -> None:
    before, after = pair
    result = drift("drift.distribution", explanation(after), explanation(before), scale=scale)
    distances = [stats.wasserstein_distance(before[:, j], after[:, j]) for j in range(6)]
    divisor = np.abs(before).mean(axis=0).sum() if scale == "total" else 1.0
    assert result.value == pytest.approx(max(distances) / divisor, rel=1e-12)
    assert result.details["distances"] == pytest.approx(dict(zip(NAMES, distances, strict=True)))
    assert result.details["feature"] == NAMES[int(np.argmax(distances))]


def test_the_same_rows_are_paired_when_the_data_match(
        pair: tuple[np.ndarray, np.ndarray]) -> None:
    before, after = pair
    rows = (np.array([4, 0, 9, 2]), np.array([1, 3, 0, 2]))  # approved row 4 is new row 1, ...
    result = drift("drift.distribution", explanation(after), explanation(before), rows=rows,
                   scale="none")
    distances = [stats.wasserstein_distance(before[rows[0], j], after[rows[1], j])
                 for j in range(6)]
    assert result.value == pytest.approx(max(distances), rel=1e-12)
    assert result.details["paired_rows"] is True
    j = int(np.argmax(distances))
    paired = np.abs(after[rows[1], j] - before[rows[0], j]).mean()
    assert result.details["mean_abs_difference"][NAMES[j]] == pytest.approx(paired)
    assert "over the same 4 explained rows" in result.handoff.statements[0]


def test_sign_flips_counts_features_whose_mean_changed_sign(
        pair: tuple[np.ndarray, np.ndarray]) -> None:
    before, after = pair
    for floor in (0.0, 0.05, 0.3):
        result = drift("drift.sign_flips", explanation(after), explanation(before),
                       min_share=floor)
        share_before = np.abs(before).mean(axis=0) / np.abs(before).mean(axis=0).sum()
        share_after = np.abs(after).mean(axis=0) / np.abs(after).mean(axis=0).sum()
        flipped = [name for j, name in enumerate(NAMES)
                   if before[:, j].mean() * after[:, j].mean() < 0
                   and share_before[j] >= floor and share_after[j] >= floor]
        assert result.value == len(flipped)
        assert result.details["flipped"] == flipped
    assert "s1 now raises the output on average" in " ".join(
        drift("drift.sign_flips", explanation(after), explanation(before)).handoff.statements)


def test_feature_changes_are_refused_unless_allowed(pair: tuple[np.ndarray, np.ndarray]) -> None:
    before, after = pair
    leak = np.column_stack([after, 10.0 * np.abs(after).sum(axis=1)])
    names = (*NAMES, "followup_lab")
    with pytest.raises(InputError, match="new: followup_lab"):
        drift("drift.share", explanation(leak, names), explanation(before))
    result = drift("drift.share", explanation(leak, names), explanation(before),
                   feature_changes=True)
    share = np.abs(leak).mean(axis=0) / np.abs(leak).mean(axis=0).sum()
    assert result.value == pytest.approx(share[-1], rel=1e-12)  # it held nothing before
    assert result.handoff.statements == (
        f"followup_lab now holds {share[-1]:.0%} of attribution; it was absent in the "
        "approved run.",)
    # a feature the new run dropped counts as holding nothing now
    dropped = drift("drift.top_k", explanation(before[:, 1:], NAMES[1:]), explanation(before),
                    feature_changes=True, k=1)
    assert dropped.details["left"] == ["age"]
    assert dropped.value == 2


def test_features_are_matched_by_name_not_position(pair: tuple[np.ndarray, np.ndarray]) -> None:
    before, _ = pair
    order = [5, 3, 0, 1, 4, 2]
    same = drift("drift.distribution", explanation(before[:, order], [NAMES[j] for j in order]),
                 explanation(before))
    assert same.value == 0.0
    assert drift("drift.rank_correlation", explanation(before[:, order],
                 [NAMES[j] for j in order]), explanation(before)).value == pytest.approx(1.0)


def test_the_worst_output_slot_is_gated() -> None:
    rng = np.random.default_rng(5)
    before = rng.normal(size=(20, 6, 2))
    after = before.copy()
    after[..., 1] = after[:, ::-1, 1]  # the second output's ranking is reversed
    result = drift("drift.rank_correlation", explanation(after, outputs=("a", "b")),
                   explanation(before, outputs=("a", "b")))
    oracle = stats.spearmanr(np.abs(before[..., 1]).mean(axis=0),
                             np.abs(after[..., 1]).mean(axis=0)).statistic
    assert result.value == pytest.approx(oracle)
    assert result.details["output"] == "b"
    assert "for output b" in result.handoff.statements[0]


def test_a_ranking_of_equal_importances_is_undefined_and_fails_its_gate(
        pair: tuple[np.ndarray, np.ndarray]) -> None:
    before, after = pair
    flat = np.zeros_like(before)  # the approved run attributed nothing
    result = drift("drift.rank_correlation", explanation(after), explanation(flat),
                   gate=xaudit.suite.GateSpec(threshold=0.7))
    with pytest.warns(stats.ConstantInputWarning):  # scipy agrees: undefined
        oracle = stats.spearmanr(np.abs(flat).mean(axis=0), np.abs(after).mean(axis=0))
    assert np.isnan(oracle.statistic)
    assert result.value is not None
    assert np.isnan(result.value)
    assert result.status == "fail"
    assert "the approved run gives every feature the same" in result.details["undefined"]
    assert "the same mean |attribution|" in result.verdict()


def test_explanations_that_cannot_be_compared_are_refused(
        pair: tuple[np.ndarray, np.ndarray]) -> None:
    before, after = pair
    with pytest.raises(InputError, match="explain the same outputs"):
        drift("drift.share", explanation(after, outputs=("z",)), explanation(before))
    with pytest.raises(InputError, match="global values"):
        drift("drift.share", explanation(after, kind="global"), explanation(before))
    model = xaudit.adapt(lambda X: X.sum(axis=1), host=HOST)
    with pytest.raises(InputError, match="give a baseline"):
        xaudit.check("drift.share", model, explanation(after), host=HOST)


def test_every_drift_check_is_a_baseline_check_with_a_direction() -> None:
    names = [n for n, cls in HOST.checks.items() if issubclass(cls, BaselineCheck)]
    assert sorted(names) == ["drift.distribution", "drift.rank_correlation", "drift.share",
                             "drift.sign_flips", "drift.top_k"]
