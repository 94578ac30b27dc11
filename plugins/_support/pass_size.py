"""Pass sizes that adapt to the model and the machine: how many points one forward(/backward)
pass evaluates when the user gives no ``max_batch``.

One fixed count of input values per pass suits no model well: a wide MLP wants thousands of
points per pass, a conv net on a CPU is fastest when a pass fits the caches, a GPU wants passes
as large as its memory allows. So the size is learnt from the work itself, by a
:class:`PassPlan` that hands out the blocks of an explanation's loop:

1. ``max_batch`` given: every pass has that many points (it always wins).
2. A size learnt earlier in this process for the same model fingerprint, device (and CPU thread
   count), dtype, point shape and pass kind: that size (:class:`PassSizeCache`), the last
   pass taking a rest under twice it within the memory bound measured when it was learnt.
3. Otherwise the first passes of the real work are the probe. After one small warm-up pass
   (one-time costs: kernel selection, allocator, lazy initialisation), passes of
   ``64, 256, 1024, ...`` points are timed in turn; each pass's throughput (points per second)
   is kept, and the probe stops at the first size clearly slower than the best so far, at the
   memory bound, or when the work left is smaller than the next size; in that last case a rest
   under twice the fastest size so far, and no smaller than the last size timed, is one more
   timed pass, so the work's own size is measured too (a smaller remnant is not a size worth
   learning). The rest of the work runs at the fastest size seen, which is cached for the
   process with the memory bound, also when the work ends within the probe (a rest under twice
   that size runs as one pass rather than a pass and a remnant, within the memory bound).
   Work no larger than the warm-up and first timed pass together (``2 * FIRST_PROBE``
   points) runs as one pass with no probe, as one call of a library without batching would:
   splitting it would only add passes.
4. A learnt size goes on learning on the CPU. Each later pass of the planned size (not a
   last pass taking a rest, nor a remnant) is timed, a clock read with no probe hooks, and
   :class:`PassSizeCache` keeps the last :data:`RECENT` throughputs of each planned size.
   The learnt size is the one of best median among the sizes timed at least :data:`SETTLED`
   times and the learnt one itself, so no single timing displaces it. A probe can only time
   sizes its work reaches (800 points learn from passes of 50 and 200), so when the learnt
   size is the largest the probe timed (its work ran out before a larger size could prove
   slower), a later call whose work reaches twice the learnt size plans with exactly twice it
   (no rest rule, so its passes are timed), and so on upwards while the larger size wins,
   in at most :data:`TRIES` calls per size (one, when its first call timed it
   :data:`SETTLED` times clearly slower) and within the memory bound. A probe that saw a
   larger size run slower is not second-guessed, and sizes are explored upwards only: a
   smaller size the probe timed slower by chance is not timed again. On any device but the
   CPU nothing is timed after the probe (reading the time would mean synchronising every
   pass).

The memory bound comes from measured activation memory: during each probe pass, the tensors
autograd saves for the backward pass are counted (distinct storages, bytes), which gives the
bytes per point (the slope between two probe sizes, or the whole amount over the points of
the first one, an over-estimate); a pass may use at most half the free GPU memory, or a quarter
of the available RAM on a CPU. Forward-only passes (``kind="forward"``, e.g. occlusion through
``predict``) save no tensors; they are bounded by :data:`FORWARD_VALUE_BUDGET` input values.

Probing never changes what is computed, only how rows (and, for a row with more points than a
pass, its points) are split into passes. Values then agree with any fixed split to float
rounding: summing a row's path points in one pass or in several adds them in a different
order, and a kernel may block its sums differently for another batch size (see
docs/explainers/gradients.md for what was measured). Pass ``max_batch`` for bit-for-bit
reruns across processes and machines.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xaudit.batching import row_blocks

FIRST_PROBE = 64
"""Points in the warm-up pass and the first timed pass."""
PROBE_GROWTH = 4
"""Each timed probe pass has this many times the points of the one before."""
SLOWER = 0.9
"""A probe size whose throughput is below this fraction of the best so far ends the probe
(a margin against timing noise on a busy machine)."""
FORWARD_VALUE_BUDGET = 2**23
"""Input values per pass bounding forward-only probes (32 MiB of float32)."""
RECENT = 5
"""Throughputs kept per planned pass size of a learnt key; their median ranks the sizes."""
SETTLED = 2
"""Timings a size needs before it may displace the learnt size (one timing may be noise)."""
TRIES = 2
"""Calls, at most, that plan with twice the learnt size (a size's first pass pays the
larger footprint's one-time costs, so one call may not show its speed)."""


@dataclass(frozen=True)
class PassKey:
    """What a learnt pass size is valid for: the model, where and how it runs, and the points."""

    fingerprint: str
    device: str
    dtype: str
    point_shape: tuple[int, ...]
    kind: str


@dataclass(eq=False)
class PassSizeCache:
    """Pass sizes learnt in this process, by :class:`PassKey`, with the memory bound (the most
    points a pass may hold) measured when each was learnt, the recent throughputs (points per
    second) of each planned size, and how many calls planned with each size on trial.
    Explanations on several threads share it: every method holds its lock."""

    sizes: dict[PassKey, int] = field(default_factory=dict)
    bounds: dict[PassKey, int] = field(default_factory=dict)
    rates: dict[PassKey, dict[int, list[float]]] = field(default_factory=dict)
    tried: dict[PassKey, dict[int, int]] = field(default_factory=dict)
    probed: dict[PassKey, int] = field(default_factory=dict)
    """The largest size the probe timed, by key."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, key: PassKey | None) -> int | None:
        """The size learnt for ``key``, or ``None``."""
        return None if key is None else self.sizes.get(key)

    def bound(self, key: PassKey | None) -> int | None:
        """The memory bound measured with the size learnt for ``key``, or ``None``."""
        return None if key is None else self.bounds.get(key)

    def put(self, key: PassKey | None, size: int, bound: int,
            timings: list[tuple[int, float]] | None = None) -> None:
        """Remember ``size``, the memory ``bound`` and the probe's ``(points, throughput)``
        ``timings`` for ``key`` (nothing without a key)."""
        if key is None:
            return
        with self.lock:
            self.sizes[key], self.bounds[key] = int(size), int(bound)
            self.rates[key], self.tried[key] = {}, {}
            self.probed[key] = max((int(points) for points, _ in timings or ()), default=0)
            for points, rate in timings or ():
                self._fold(key, points, rate)

    def observe(self, key: PassKey, size: int, rate: float) -> None:
        """Fold in the throughput ``rate`` of a pass of the planned ``size``: the learnt size
        becomes the one of best median among the sizes timed :data:`SETTLED` times or more
        and the learnt one."""
        with self.lock:
            self._fold(key, size, rate)
            learnt = self.sizes.get(key)
            ranked = [(planned, statistics.median(recent))
                      for planned, recent in self.rates[key].items()
                      if len(recent) >= SETTLED or planned == learnt]
            if ranked:
                self.sizes[key] = max(ranked, key=lambda item: item[1])[0]

    def _fold(self, key: PassKey, size: int, rate: float) -> None:
        table = self.rates.setdefault(key, {})
        table[int(size)] = [*table.get(int(size), []), float(rate)][-RECENT:]

    def larger_to_try(self, key: PassKey, work: int) -> int | None:
        """Twice the learnt size, when the probe timed nothing larger (it stopped because its
        work ran out, not because a larger size was slower), ``work`` reaches it, it is
        within the memory bound, fewer than :data:`TRIES` calls planned with it (this call is
        counted) and it was not already timed :data:`SETTLED` times clearly slower (below
        :data:`SLOWER` of the learnt size's median); else ``None``."""
        with self.lock:
            learnt = self.sizes.get(key)
            if learnt is None or learnt < self.probed.get(key, 0):
                return None
            larger, tried = 2 * learnt, self.tried.setdefault(key, {})
            if larger > min(work, self.bounds.get(key, 0)) or tried.get(larger, 0) >= TRIES:
                return None
            table = self.rates.get(key, {})
            seen, own = table.get(larger, []), table.get(learnt)
            if own and len(seen) >= SETTLED and (
                    statistics.median(seen) < SLOWER * statistics.median(own)):
                return None
            tried[larger] = tried.get(larger, 0) + 1
            return larger

    def clear(self) -> None:
        """Forget every learnt size."""
        with self.lock:
            for table in (self.sizes, self.bounds, self.rates, self.tried, self.probed):
                table.clear()


LEARNT = PassSizeCache()
"""The process's learnt sizes (read and filled by :func:`plan_passes`)."""


def pass_key(model: Any, like: Any, point_shape: tuple[int, ...], kind: str) -> PassKey | None:
    """The cache key of ``model`` evaluating points shaped ``point_shape`` like the tensor (or
    array) ``like``; ``None`` when the model has no fingerprint (nothing is cached then)."""
    try:
        fingerprint = str(model.fingerprint())
    except Exception:  # a model that cannot name itself is probed every time
        return None
    device = str(getattr(like, "device", "cpu"))
    if device.startswith("cpu"):
        device = f"cpu:{_cpu_threads()}threads"
    return PassKey(fingerprint, device, str(getattr(like, "dtype", "")), tuple(point_shape),
                   kind)


def _cpu_threads() -> int:
    torch = _torch_if_imported()
    return int(torch.get_num_threads()) if torch is not None else os.cpu_count() or 1


def _torch_if_imported() -> Any:
    return sys.modules.get("torch")


def memory_budget(like: Any) -> int:
    """Bytes one pass may fill: half the free memory of ``like``'s GPU, else a quarter of the
    available RAM (1 GiB where the system does not say)."""
    torch = _torch_if_imported()
    device = getattr(like, "device", None)
    if torch is not None and getattr(device, "type", None) == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free) // 2
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 4
    except (AttributeError, ValueError, OSError):
        return 2**30


class SavedBytes:
    """Counts the bytes of the distinct storages autograd saves for backward while active
    (``torch.autograd.graph.saved_tensors_hooks``)."""

    def __init__(self) -> None:
        self.storages: dict[int, int] = {}

    def pack(self, tensor: Any) -> Any:
        """Record ``tensor``'s storage and keep the tensor itself."""
        try:
            storage = tensor.untyped_storage()
            self.storages[storage.data_ptr()] = int(storage.nbytes())
        except (RuntimeError, NotImplementedError):  # tensors without a plain storage
            pass
        return tensor

    @staticmethod
    def unpack(tensor: Any) -> Any:
        """The saved tensor, unchanged."""
        return tensor

    @property
    def total(self) -> int:
        """Bytes saved so far."""
        return sum(self.storages.values())


@dataclass
class PassPlan:
    """The pass sizes of one explanation (see the module docstring for the rule).

    ``fixed`` is the size when it is known up front (``max_batch`` or a cached size); otherwise
    the plan probes and, once decided, stores its choice in ``cache`` under ``key``.
    """

    fixed: int | None
    key: PassKey | None
    cap: int
    kind: str = "backward"
    cache: PassSizeCache = LEARNT
    budget: int = 2**30
    device: Any = None
    """The device the passes run on; a CUDA device is synchronised before a probe pass's time
    is read (its kernels run asynchronously)."""
    bound: int | None = None
    """For a size learnt earlier (``fixed`` from the cache): the memory bound measured with it,
    within which the last pass may take a rest of up to twice the size; ``None`` for
    ``max_batch``, which is never exceeded."""
    refining: bool = False
    """For a size learnt earlier, on the CPU: time the passes of the planned size and feed the
    cache (:meth:`PassSizeCache.observe`), and try twice the size when the cache says so."""
    trying: bool = False
    """This call plans with a size on trial: passes of exactly that size, no rest rule."""
    chosen: int | None = None
    timings: list[tuple[int, float]] = field(default_factory=list)
    memory: list[tuple[int, int]] = field(default_factory=list)
    warmed: bool = False

    def __post_init__(self) -> None:
        if self.fixed is not None:
            self.chosen = int(self.fixed)

    # ------------------------------------------------------------------ the sizes

    def next_size(self, remaining: int) -> int:
        """Points for the next pass, ``remaining`` points of work being left."""
        if self.chosen is not None:
            return self.chosen if self.trying else self._with_rest(remaining)
        if not self.warmed and too_small_to_probe(remaining, self.cap):
            return remaining
        if not self.timings:  # the warm-up pass, then the first timed one
            return min(FIRST_PROBE, self.cap)
        size = self.timings[-1][0] * PROBE_GROWTH
        if size <= min(self.memory_cap(), remaining):
            return size
        best = max(self.timings, key=lambda t: t[1])[0]
        if (size <= self.memory_cap() and self.timings[-1][0] <= remaining
                and remaining <= min(2 * best, self.memory_cap())):
            return remaining  # the work ends before the next size: its rest, one more timing
        self.decide()
        return self._with_rest(remaining)

    def _with_rest(self, remaining: int) -> int:
        """The chosen size, or all ``remaining`` points when they are under twice that size
        and within the memory bound (one pass rather than a pass and a remnant). A size
        learnt earlier takes the bound measured then (:attr:`bound`); ``max_batch`` (fixed
        with no bound) is never exceeded."""
        chosen = int(self.chosen or 1)
        limit = self.bound if self.fixed is not None else self.memory_cap()
        return remaining if limit is not None and remaining <= min(2 * chosen, limit) else chosen

    def memory_cap(self) -> int:
        """The most points a pass may hold: ``cap``, and for backward passes the memory budget
        over the measured bytes saved per point."""
        if self.kind != "backward" or not self.memory:
            return self.cap
        (p1, b1), (p2, b2) = self.memory[0], self.memory[-1]
        per_point = (b2 - b1) / (p2 - p1) if p2 > p1 and b2 > b1 else b2 / max(1, p2)
        return max(1, min(self.cap, int(self.budget / max(per_point, 1.0))))

    def record(self, points: int, seconds: float, saved: int | None) -> None:
        """Fold one timed probe pass in; decide when it was slower than the one before."""
        if self.chosen is not None:
            return
        if not self.warmed:
            self.warmed = True
            return
        if saved is not None and saved > 0:
            self.memory.append((points, saved))
        self.timings.append((points, points / max(seconds, 1e-9)))
        best = max(rate for _, rate in self.timings)
        if len(self.timings) >= 2 and self.timings[-1][1] < SLOWER * best:
            self.decide()

    def decide(self) -> None:
        """Settle on the fastest size probed (the memory bound when nothing was timed)."""
        if self.chosen is not None:
            return
        if not self.timings:
            self.chosen = self.memory_cap()
            return
        self.chosen = max(self.timings, key=lambda t: t[1])[0]
        if len(self.timings) >= 2:
            self.cache.put(self.key, self.chosen, self.memory_cap(), self.timings)

    # ------------------------------------------------------------------ the blocks

    def row_passes(self, n: int, per_row: int = 1) -> Iterator[slice]:
        """Consecutive row slices covering ``range(n)``, each one pass of whole rows of
        ``per_row`` points (a row larger than the pass is a pass of its own)."""
        for rows, _ in self._passes(n, per_row, split_rows=False):
            yield rows

    def point_passes(self, n: int, per_row: int) -> Iterator[tuple[slice, slice]]:
        """``(rows, points)`` of each pass: whole rows while a row fits a pass, else one row's
        points in consecutive parts (all rows' parts split alike once the size is settled)."""
        yield from self._passes(n, per_row, split_rows=True)

    def _passes(self, n: int, per_row: int,
                split_rows: bool) -> Iterator[tuple[slice, slice]]:
        yield from self._work(n, per_row, split_rows)
        if self.chosen is None and self.timings:  # the work ended within the probe
            self.decide()

    def _work(self, n: int, per_row: int, split_rows: bool) -> Iterator[tuple[slice, slice]]:
        per_row = max(1, int(per_row))
        self._try_larger(n * per_row)
        start = 0
        while start < n:
            size = self.next_size((n - start) * per_row)
            planned = size == self.chosen  # not a rest (nor probing)
            if per_row <= size or not split_rows:
                full = max(1, size // per_row)
                rows = min(n - start, full)
                yield from self._timed(slice(start, start + rows), slice(0, per_row),
                                       rows * per_row, planned and rows == full)
                start += rows
                continue
            for part in row_blocks(per_row, size):
                points = part.stop - part.start
                yield from self._timed(slice(start, start + 1), part, points,
                                       planned and points == size)
            start += 1

    def _try_larger(self, work: int) -> None:
        """On a refining plan, plan this ``work`` with twice the learnt size when the cache
        says it is worth a trial (:meth:`PassSizeCache.larger_to_try`)."""
        if self.refining and self.key is not None and self.chosen is not None:
            larger = self.cache.larger_to_try(self.key, work)
            if larger is not None:
                self.chosen, self.trying = larger, True

    def _timed(self, rows: slice, part: slice, points: int,
               planned: bool) -> Iterator[tuple[slice, slice]]:
        """Hand out one pass; time it while probing, or when it has the planned size of a
        refining plan (``planned``: not a rest nor a remnant)."""
        if self.chosen is not None:
            if not (planned and self.refining and self.key is not None):
                yield rows, part
                return
            started = time.perf_counter()
            yield rows, part
            seconds = time.perf_counter() - started
            self.cache.observe(self.key, self.chosen, points / max(seconds, 1e-9))
            return
        # the warm-up pass is not measured, so it runs without the counting hooks
        counter = SavedBytes() if self.kind == "backward" and self.warmed else None
        with ExitStack() as stack:
            torch = _torch_if_imported()
            if counter is not None and torch is not None:
                stack.enter_context(torch.autograd.graph.saved_tensors_hooks(
                    counter.pack, counter.unpack))
            started = time.perf_counter()
            yield rows, part
            if torch is not None and getattr(self.device, "type", None) == "cuda":
                torch.cuda.synchronize(self.device)
            seconds = time.perf_counter() - started
        self.record(points, seconds, counter.total if counter is not None else None)


def on_cpu(device: Any) -> bool:
    """Whether ``device`` (a torch device, numpy's ``"cpu"``, or ``None`` for an array
    without one) is the CPU, whose passes end when their call returns."""
    kind = getattr(device, "type", device)
    return kind is None or str(kind).startswith("cpu")


def too_small_to_probe(points: int, cap: int) -> bool:
    """Whether work of ``points`` points runs as one pass with no probe: no more than the
    warm-up and the first timed pass would hold (``2 * FIRST_PROBE``, within ``cap``), so there
    is nothing to learn and splitting it would only add passes."""
    return points <= min(2 * FIRST_PROBE, cap)


def forward_rows(max_batch: int | None, point_shape: tuple[int, ...]) -> int:
    """Rows per pass of a forward pass without autograd (outputs only): ``max_batch``, else as
    many as hold :data:`FORWARD_VALUE_BUDGET` input values (at least 16)."""
    if max_batch is not None:
        return int(max_batch)
    return max(16, FORWARD_VALUE_BUDGET // max(1, math.prod(point_shape)))


def predict_in_passes(model: Any, X: np.ndarray, plan: PassPlan) -> np.ndarray:
    """``model.predict`` over the rows of ``X`` in the passes of ``plan``, concatenated."""
    parts = [model.predict(X[rows]) for rows in plan.row_passes(X.shape[0])]
    return np.concatenate(parts, axis=0)


def plan_passes(model: Any, like: Any, point_shape: tuple[int, ...], max_batch: int | None,
                kind: str = "backward", cache: PassSizeCache = LEARNT,
                points: int | None = None) -> PassPlan:
    """The :class:`PassPlan` of one explanation evaluating ``model`` on points shaped
    ``point_shape`` on ``like``'s device and dtype: ``max_batch`` when given, else a size learnt
    earlier for the same :class:`PassKey`, else one learnt now (``kind``: ``backward`` for
    forward+backward passes, ``forward`` for forward-only ones). ``points``, the work's size
    when the caller knows it: work too small to probe (:func:`too_small_to_probe`) is one pass,
    planned without the model's key or the memory budget (a millisecond saliency call would
    otherwise spend a tenth of its time planning one pass)."""
    cap = 2**31 if kind == "backward" else forward_rows(None, point_shape)
    if max_batch is not None:
        return PassPlan(fixed=int(max_batch), key=None, cap=cap, kind=kind, cache=cache)
    if points is not None and too_small_to_probe(points, cap):
        return PassPlan(fixed=max(1, points), key=None, cap=cap, kind=kind, cache=cache)
    key = pass_key(model, like, point_shape, kind)
    learnt = cache.get(key)
    device = getattr(like, "device", None)
    if learnt is not None:
        return PassPlan(fixed=learnt, key=key, cap=cap, kind=kind, cache=cache,
                        bound=cache.bound(key), device=device, refining=on_cpu(device))
    return PassPlan(fixed=None, key=key, cap=cap, kind=kind, cache=cache,
                    budget=memory_budget(like), device=device)
