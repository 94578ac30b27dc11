"""Pass sizes learnt from the model (``plugins/_support/pass_size.py``, issue 16 item 1).

The oracle for values is the same method with a fixed ``max_batch``: probing only changes how
rows are split into passes. Values agree to float rounding, tested at 1e-6 of the largest
value: on this BatchNorm CNN the CPU's convolution kernels give results differing in the last
bits for different batch sizes (measured: 5.6e-9 absolute, about 1e-7 of the largest value),
and where a row's points are split across passes their sums are added in another order. (On
the seeds' MLP and CNN the values were bit-identical; that is not asserted, as it depends on
the kernels the machine picks.) The probe's rule and its memory bound are
checked against their definitions with synthetic timings and byte counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import xaudit  # noqa: E402
from xaudit.plugins._support.autograd import _LAYOUTS  # noqa: E402
from xaudit.plugins._support.pass_size import (  # noqa: E402
    FIRST_PROBE,
    LEARNT,
    RECENT,
    TRIES,
    PassKey,
    PassPlan,
    PassSizeCache,
    SavedBytes,
    pass_key,
    plan_passes,
)


class SmallCNN(nn.Module):
    """1x12x12 images: conv, BatchNorm, max-pool, a tanh head (4 outputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Linear(4 * 6 * 6, 4)

    def forward(self, x: Any) -> Any:
        hidden = nn.functional.max_pool2d(torch.relu(self.norm(self.conv(x))), 2)
        return torch.tanh(self.head(hidden.flatten(1)))


def small_cnn(seed: int) -> tuple[Any, Any]:
    torch.manual_seed(seed)
    net = SmallCNN().eval()
    return net, xaudit.adapt(net, device="cpu", feature_shape=[1, 12, 12])


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Every test starts with nothing learnt (and leaves nothing behind): no pass size, and
    no memory-layout verdict (so each explanation's passes start with the 1-row layout check)."""
    LEARNT.clear()
    _LAYOUTS.clear()
    yield
    LEARNT.clear()
    _LAYOUTS.clear()


def pass_sizes(net: Any, forward_only: bool = False) -> Any:
    """A hook recording the rows of every pass through ``net.conv``, and its handle: the
    forwards with autograd on (no-grad forwards that pick predicted outputs, evaluate the
    baseline or check the memory layout are not passes), every forward when ``forward_only``
    (a method whose passes are predictions)."""
    seen: list[int] = []
    handle = net.conv.register_forward_pre_hook(
        lambda _, args: seen.append(args[0].shape[0])
        if forward_only or torch.is_grad_enabled() else None)
    return seen, handle


def same_to_rounding(ours: np.ndarray, fixed: np.ndarray) -> None:
    """Equal to the fixed batch's values within 1e-6 of their largest magnitude."""
    scale = float(np.abs(fixed).max())
    assert scale > 0
    np.testing.assert_allclose(ours, fixed, rtol=0, atol=1e-6 * scale)


IMAGES = np.random.default_rng(0).random((40, 1, 12, 12)).astype(np.float32)
BACKGROUND = np.random.default_rng(1).random((10, 1, 12, 12)).astype(np.float32)

CASES = {
    "gradient.integrated": ({"n_steps": 20}, 40 * 20),
    "shap.gradient": ({"n_samples": 20, "background": BACKGROUND}, 40 * 20),
    "gradient.saliency": ({}, 40),
    "occlusion": ({"window": [1, 3, 3]}, 40 * 16),
}
"""method -> (parameters, points or model rows the method evaluates)."""


@pytest.mark.parametrize("method", list(CASES))
def test_adaptive_passes_give_the_values_of_a_fixed_batch(method: str) -> None:
    params, _ = CASES[method]
    net, model = small_cnn(0)
    X = np.concatenate([IMAGES] * 16) if method == "gradient.saliency" else IMAGES
    seen, handle = pass_sizes(net, forward_only=method == "occlusion")
    try:
        adaptive = xaudit.explain(model, X, method=method, seed=3, **params).values
    finally:
        handle.remove()
    fixed = xaudit.explain(model, X, method=method, seed=3, max_batch=100_000, **params).values
    small = xaudit.explain(model, X, method=method, seed=3, max_batch=17, **params).values
    assert len(set(seen)) >= 2, f"the probe tried one size only: {seen}"
    same_to_rounding(adaptive, fixed)
    same_to_rounding(small, fixed)


def test_rows_split_across_passes_agree_to_float_rounding() -> None:
    """300 steps per row: the probe's passes (64, 256, ...) cut rows into parts."""
    net, model = small_cnn(0)
    seen, handle = pass_sizes(net)
    try:
        adaptive = xaudit.explain(model, IMAGES[:6], method="gradient.integrated", n_steps=300)
    finally:
        handle.remove()
    fixed = xaudit.explain(model, IMAGES[:6], method="gradient.integrated", n_steps=300,
                           max_batch=100_000)
    assert FIRST_PROBE in seen
    same_to_rounding(adaptive.values, fixed.values)


def test_explicit_max_batch_wins_over_a_learnt_size() -> None:
    net, model = small_cnn(0)
    xaudit.explain(model, IMAGES, method="gradient.integrated", n_steps=20)
    assert len(LEARNT.sizes) == 1
    seen, handle = pass_sizes(net)
    try:
        xaudit.explain(model, IMAGES, method="gradient.integrated", n_steps=20, max_batch=60)
    finally:
        handle.remove()
    path_passes = seen
    assert set(path_passes) == {60, 20}  # 13 passes of 3 rows x 20 steps, then one row


def test_a_learnt_size_is_reused_for_its_model_only() -> None:
    net, model = small_cnn(0)
    xaudit.explain(model, IMAGES, method="gradient.integrated", n_steps=20)
    (key, learnt), = LEARNT.sizes.items()
    seen, handle = pass_sizes(net)
    try:
        again = xaudit.explain(model, IMAGES, method="gradient.integrated", n_steps=20)
    finally:
        handle.remove()
    path_passes = seen
    # no probe the second time: passes of the learnt size, or of twice it on trial (docs rule 5),
    # and a last one with the rest
    assert len(set(path_passes[:-1])) <= 1
    assert set(path_passes[:-1]) <= {learnt, 2 * learnt}
    assert sum(path_passes) == 40 * 20
    fixed = xaudit.explain(model, IMAGES, method="gradient.integrated", n_steps=20,
                           max_batch=100_000)
    same_to_rounding(again.values, fixed.values)

    other_net, other = small_cnn(1)  # other weights: another fingerprint, its own probe
    seen, handle = pass_sizes(other_net)
    try:
        xaudit.explain(other, IMAGES, method="gradient.integrated", n_steps=20)
    finally:
        handle.remove()
    assert len(LEARNT.sizes) == 2
    assert FIRST_PROBE // 20 * 20 in seen
    assert key.point_shape == (1, 12, 12)
    assert key.kind == "backward"


def probe(cache: PassSizeCache, rates: dict[int, float], cap: int = 2**31,
          budget: int = 2**40, per_point: int = 0, key: PassKey | None = None) -> PassPlan:
    """Run a plan over 100,000 points of one point per row with synthetic timings: a pass of
    ``p`` points takes ``p / rates[p]`` seconds and saves ``100 + p * per_point`` bytes."""
    plan = PassPlan(fixed=None, key=key, cap=cap, cache=cache, budget=budget)
    remaining = 100_000
    while plan.chosen is None:
        size = plan.next_size(remaining)
        if plan.chosen is not None:
            break
        plan.record(size, size / rates.get(size, 1.0), 100 + size * per_point)
        remaining -= size
    return plan


def test_the_probe_grows_by_four_and_stops_once_clearly_slower() -> None:
    rates = {64: 100.0, 256: 300.0, 1024: 500.0, 4096: 440.0, 16384: 900.0}
    plan = probe(PassSizeCache(), rates)
    assert [points for points, _ in plan.timings] == [64, 256, 1024, 4096]
    assert plan.chosen == 1024  # 4096 ran at 0.88 of the best: stop; 16384 never tried
    nearly = probe(PassSizeCache(), {**rates, 4096: 460.0})  # 0.92 of the best: go on
    assert nearly.chosen == 16384


def pass_lengths(plan: PassPlan, n: int) -> list[int]:
    """Rows of each pass ``plan`` gives ``n`` rows of one point (the passes run no work)."""
    return [rows.stop - rows.start for rows in plan.row_passes(n)]


@pytest.mark.parametrize("n", [1, 100, 2 * FIRST_PROBE])
def test_work_the_warm_up_and_first_probe_would_hold_is_one_pass(n: int) -> None:
    plan = PassPlan(fixed=None, key=None, cap=2**31, cache=PassSizeCache())
    assert pass_lengths(plan, n) == [n]
    assert plan.timings == []  # nothing was probed


class Named:
    """A model that counts the times its fingerprint (the pass-size key) is asked for."""

    def __init__(self) -> None:
        self.asked = 0

    def fingerprint(self) -> str:
        self.asked += 1
        return "named"


@pytest.mark.parametrize("n", [0, 1, 2 * FIRST_PROBE])
def test_small_work_is_planned_as_one_pass_without_the_models_key(n: int) -> None:
    model = Named()
    plan = plan_passes(model, torch.zeros(1, 3), (3,), None, points=n,
                       cache=PassSizeCache())
    assert (model.asked, plan.key, plan.timings) == (0, None, [])
    assert pass_lengths(plan, n) == ([n] if n else [])
    larger = plan_passes(model, torch.zeros(1, 3), (3,), None, points=2 * FIRST_PROBE + 1,
                         cache=PassSizeCache())
    assert (model.asked, larger.key is None, larger.chosen) == (1, False, None)  # keyed, probed


@pytest.mark.parametrize(("bound", "n", "expected"), [
    (10**6, 300, [300]), (10**6, 512, [512]), (10**6, 600, [256, 344]),
    (300, 400, [256, 144]),  # 400 points would pass the bound measured with the size
    (None, 300, [256, 44]),  # max_batch: never exceeded
])
def test_a_learnt_size_takes_a_rest_under_twice_it_in_one_pass(
        bound: int | None, n: int, expected: list[int]) -> None:
    model, like, cache = Named(), torch.zeros(1, 3), PassSizeCache()
    if bound is None:
        plan = plan_passes(model, like, (3,), 256, cache=cache)
    else:
        key = pass_key(model, like, (3,), "backward")
        cache.put(key, 256, bound)
        cache.tried[key][512] = TRIES  # twice the size was tried already: no trial here
        plan = plan_passes(model, like, (3,), None, cache=cache)
    assert pass_lengths(plan, n) == expected


def test_a_probe_remembers_the_memory_bound_with_the_size() -> None:
    cache, key = PassSizeCache(), PassKey("m", "cpu", "float32", (3,), "backward")
    probe(cache, {64: 1.0, 256: 2.0, 1024: 3.0, 4096: 4.0}, budget=1_000 * 2_000,
          per_point=1_000, key=key)  # 4,096 points would pass the bound: the probe ends
    assert (cache.get(key), cache.bound(key)) == (1024, 2_000)


def test_larger_work_is_probed_and_covers_every_row_once() -> None:
    n = 2 * FIRST_PROBE + 1
    lengths = pass_lengths(PassPlan(fixed=None, key=None, cap=2**31, cache=PassSizeCache()), n)
    assert lengths[:2] == [FIRST_PROBE, FIRST_PROBE]  # the warm-up, then the first timed pass
    assert sum(lengths) == n


def probed(timings: tuple[tuple[int, float], ...]) -> PassPlan:
    """A plan after the warm-up and the timed passes ``(points, seconds)``, still undecided."""
    plan = PassPlan(fixed=None, key=None, cap=2**31, cache=PassSizeCache())
    plan.record(FIRST_PROBE, 1.0, None)  # the warm-up, not timed
    for points, seconds in timings:
        plan.record(points, seconds, None)
    return plan


@pytest.mark.parametrize(("rest", "expected"), [(500, 500), (512, 512), (1000, 256)])
def test_a_rest_under_twice_the_chosen_size_is_one_pass(rest: int, expected: int) -> None:
    plan = probed(((64, 1.0), (256, 2.0)))  # 64 then 128 points a second: 256 is the best
    assert plan.next_size(rest) == expected  # the next probe (1,024) exceeds every rest here
    # a rest in one pass is timed as one more size before the plan settles; else 256 it is
    assert plan.chosen == (None if rest == expected else 256)


def test_the_rest_of_work_ending_within_the_probe_is_timed_and_the_faster_size_learnt() -> None:
    model, like, cache = Named(), torch.zeros(1, 3), PassSizeCache()
    plan = plan_passes(model, like, (3,), None, cache=cache)
    plan.record(FIRST_PROBE, 1.0, None)  # the warm-up, not timed
    plan.record(FIRST_PROBE, 1.0, None)  # 64 points a second
    assert plan.next_size(2 * FIRST_PROBE) == 2 * FIRST_PROBE  # the next probe (256) is larger
    assert plan.chosen is None
    plan.record(2 * FIRST_PROBE, 1.0, None)  # the rest: 128 points a second
    plan.decide()  # as row_passes does when the work is done
    assert cache.get(plan.key) == 2 * FIRST_PROBE
    again = plan_passes(model, like, (3,), None, cache=cache)
    assert pass_lengths(again, 4 * FIRST_PROBE) == [4 * FIRST_PROBE]  # under twice 128


def test_a_remnant_smaller_than_the_last_size_timed_is_not_learnt() -> None:
    plan = probed(((FIRST_PROBE, 1.0),))
    assert plan.next_size(FIRST_PROBE - 1) == FIRST_PROBE - 1
    assert plan.chosen == FIRST_PROBE  # settled on what was timed; the remnant was not timed


def test_work_ending_within_the_probe_still_settles_the_plan() -> None:
    plan = PassPlan(fixed=None, key=None, cap=2**31, cache=PassSizeCache())
    assert pass_lengths(plan, 2 * FIRST_PROBE + 1) == [FIRST_PROBE, FIRST_PROBE, 1]
    assert plan.chosen is not None  # decided from the timed passes once the work ended


def test_the_memory_bound_comes_from_saved_bytes_per_point() -> None:
    plan = probe(PassSizeCache(), {64: 1.0, 256: 2.0, 1024: 3.0, 4096: 4.0},
                 budget=1_000 * 2_000, per_point=1_000)
    assert plan.memory_cap() == 2_000  # the slope between two probes: 1,000 bytes a point
    assert plan.chosen == 1024  # 4096 points would need 4 MB of the 2 MB allowed


def test_saved_bytes_count_distinct_storages() -> None:
    counter = SavedBytes()
    x = torch.ones(8, 10, requires_grad=True)
    weight = torch.ones(10, 5, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        hidden = x @ weight  # saves x and weight
        (hidden * hidden).sum()  # saves hidden (twice, one storage)
    assert counter.total == (8 * 10 + 10 * 5 + 8 * 5) * 4


KEY = PassKey("m", "cpu", "float32", (3,), "backward")


def test_a_learnt_size_goes_on_learning_from_later_passes() -> None:
    """Later passes are kept per planned size (the last RECENT), and a size timed SETTLED
    times whose median beats the learnt size's takes over; one timing does not."""
    cache = PassSizeCache()
    cache.put(KEY, 256, 10**6, [(64, 100.0), (256, 300.0)])
    cache.observe(KEY, 512, 1000.0)  # one timing of another size: maybe noise
    assert cache.get(KEY) == 256
    cache.observe(KEY, 512, 900.0)  # timed twice, median 950
    assert cache.get(KEY) == 512
    for _ in range(RECENT):
        cache.observe(KEY, 512, 400.0)
    assert cache.rates[KEY][512] == [400.0] * RECENT  # the older timings are forgotten
    cache.observe(KEY, 256, 450.0)  # 256 timed again: median 375 of 300 and 450
    assert cache.get(KEY) == 512
    cache.observe(KEY, 256, 700.0)  # median 450 of 300, 450 and 700: above 512's 400
    assert cache.get(KEY) == 256


def test_twice_the_learnt_size_is_tried_in_at_most_tries_calls() -> None:
    cache = PassSizeCache()
    cache.put(KEY, 256, 10**6, [(64, 100.0), (256, 300.0), (1024, 200.0)])
    assert cache.larger_to_try(KEY, work=10**6) is None  # the probe saw 1,024 run slower
    cache.put(KEY, 256, 10**6, [(64, 100.0), (256, 300.0)])
    assert cache.larger_to_try(KEY, work=511) is None  # the work never reaches 512
    assert [cache.larger_to_try(KEY, work=512) for _ in range(TRIES + 1)] == (
        [512] * TRIES + [None])
    cache.put(KEY, 256, 500, [(64, 100.0), (256, 300.0)])  # 512 points pass the bound
    assert cache.larger_to_try(KEY, 10**6) is None
    cache.put(KEY, 256, 10**6, [(64, 100.0), (256, 300.0)])
    assert cache.larger_to_try(KEY, 10**6) == 512
    cache.observe(KEY, 512, 260.0)
    cache.observe(KEY, 512, 280.0)  # timed twice at 0.9 of 256's median: not clearly slower
    assert cache.larger_to_try(KEY, 10**6) == 512
    cache.put(KEY, 256, 10**6, [(64, 100.0), (256, 300.0)])
    assert cache.larger_to_try(KEY, 10**6) == 512
    cache.observe(KEY, 512, 200.0)
    cache.observe(KEY, 512, 220.0)  # timed twice, clearly slower: one call settled it
    assert cache.larger_to_try(KEY, 10**6) is None


def test_a_learnt_plan_times_its_planned_passes_only() -> None:
    model, like, cache = Named(), torch.zeros(1, 3), PassSizeCache()
    key = pass_key(model, like, (3,), "backward")
    cache.put(key, 256, 10**6, [(64, 100.0), (256, 300.0)])
    # on trial: passes of exactly 512 (no rest rule), each timed; the remnant is not
    assert pass_lengths(plan_passes(model, like, (3,), None, cache=cache), 1400) == [
        512, 512, 376]
    assert set(cache.rates[key]) == {64, 256, 512}
    assert len(cache.rates[key][512]) == 2
    assert cache.get(key) == 512  # passes with no work in them: faster than 300 a second
    cache.tried[key][1024] = TRIES  # no trial now: the learnt size and its rest rule
    assert pass_lengths(plan_passes(model, like, (3,), None, cache=cache), 1400) == [512, 888]
    assert len(cache.rates[key][512]) == 3  # the 888-point rest was not timed
    assert 888 not in cache.rates[key]


def test_a_learnt_plan_on_a_gpu_neither_times_nor_tries() -> None:
    """Timing a GPU pass would synchronise it: after the probe the learnt size is kept."""
    model, cache = Named(), PassSizeCache()
    gpu_like = SimpleNamespace(device=SimpleNamespace(type="cuda"), dtype="float32")
    key = pass_key(model, gpu_like, (3,), "backward")
    cache.put(key, 256, 10**6, [(64, 100.0), (256, 300.0)])
    plan = plan_passes(model, gpu_like, (3,), None, cache=cache)
    assert pass_lengths(plan, 1400) == [256] * 4 + [376]
    assert set(cache.rates[key]) == {64, 256}
    assert not cache.tried[key]


def test_every_call_while_the_size_is_refined_gives_the_fixed_batch_values() -> None:
    """The probe's call, then calls at a learnt size, at twice it on trial and at what the
    medians pick: the passes change, the values (to float rounding) do not."""
    net, model = small_cnn(0)
    fixed = xaudit.explain(model, IMAGES, method="gradient.integrated", n_steps=20,
                           max_batch=100_000).values
    seen, handle = pass_sizes(net)
    splits = []
    try:
        for call in range(5):
            seen.clear()
            values = xaudit.explain(model, IMAGES, method="gradient.integrated",
                                    n_steps=20).values
            assert sum(seen) == 40 * 20  # every point once, in whatever passes
            same_to_rounding(values, fixed)
            splits.append(tuple(seen))
            if call == 0:  # as if the probe had learnt 3 rows (60 points) from a slow timing
                (key, _), = LEARNT.sizes.items()
                LEARNT.put(key, 60, LEARNT.bounds[key], [(60, 1.0)])
    finally:
        handle.remove()
    assert splits[1][:2] == (120, 120)  # twice the learnt size, on trial
    assert len(LEARNT.rates[key][120]) >= 2  # its passes were timed ...
    assert LEARNT.get(key) != 60  # ... and beat the slow timing
    assert len(set(splits[1:])) > 1  # later calls went on to try larger sizes
