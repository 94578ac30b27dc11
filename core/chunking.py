"""One row chunk of an explainer's work, and the chunks' attributions joined back in row order.

:func:`explain_chunk` is what every executor runs for a chunk, in this process or on a Dask
worker: the explainer on the chunk's rows with the chunk's own random stream
(:func:`~xaudit.seeding.chunk_rng`). :class:`ChunkJoin` places each chunk's per-row arrays at
its rows as the chunk arrives, whatever order they finish in, and joins the hand-offs in row
order at the end. Arrays over a bound go to memory-mapped scratch files
(:func:`~xaudit.result_store.scratch_array`), so a run of millions of rows holds one chunk in
memory at a time, not every chunk and then their concatenation.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import PluginError
from .explanation import Attribution
from .handoff import Handoff, SurrogateFit
from .model import InputSpec, Model
from .plugin import Explainer
from .result_store import out_of_core, scratch_array
from .seeding import chunk_rng
from .targets import TargetSelection


@dataclass(frozen=True)
class ChunkRecord:
    """Where and how long one chunk ran (saved in the run's provenance)."""

    start: int
    stop: int
    seconds: float
    worker: str

    def to_dict(self) -> dict[str, Any]:
        """The record as saved in results.json."""
        return {"rows": [self.start, self.stop], "seconds": self.seconds, "worker": self.worker}


@dataclass(frozen=True)
class ChunkOutput:
    """A chunk's attribution, its target indices (filled by an explainer that finds the
    predicted output itself) and its record."""

    attribution: Attribution
    target_indices: np.ndarray
    record: ChunkRecord


@dataclass(frozen=True)
class ChunkTask:
    """Everything a chunk needs besides the model: the explainer, the rows, the seed."""

    explainer: Explainer
    rows: np.ndarray
    background: np.ndarray | None
    targets: TargetSelection
    seed: int
    start: int
    extra: dict[str, Any]
    input_spec: InputSpec | None = None
    """The caller's input spec (feature names) when it differs from the model's own."""


def explain_chunk(task: ChunkTask, model: Model, worker: str = "local") -> ChunkOutput:
    """Explain ``task``'s rows with ``model`` and the chunk's own random stream."""
    from .engine import CountingModel  # the engine imports the executors, which import this

    used: Model = model if task.input_spec is None else CountingModel(model, task.input_spec)
    stop = task.start + task.rows.shape[0]
    started = time.perf_counter()
    attribution = task.explainer.explain(
        used, task.rows, background=task.background, targets=task.targets,
        rng=chunk_rng(task.seed, task.start, stop), **task.extra)
    record = ChunkRecord(task.start, stop, time.perf_counter() - started, worker)
    return ChunkOutput(attribution, task.targets.indices, record)


def chunk_tasks(explainer: Explainer, rows: np.ndarray, background: np.ndarray | None,
                targets: TargetSelection, seed: int, extra: dict[str, Any],
                input_spec: InputSpec | None, slices: list[slice]) -> list[ChunkTask]:
    """One task per slice of ``rows``; per-row ``extra`` arrays (labels) are sliced too."""
    n = rows.shape[0]

    def part(value: Any, rows_of: slice) -> Any:
        return value[rows_of] if isinstance(value, np.ndarray) and value.shape[:1] == (n,) \
            else value

    return [ChunkTask(explainer, rows[s], background,
                      TargetSelection(targets.indices[s].copy(), targets.names, targets.pending),
                      seed, s.start, {k: part(v, s) for k, v in extra.items()}, input_spec)
            for s in slices]


PER_ROW_ARRAYS = ("values", "base_values", "std_errors")
"""The attribution's per-row arrays that :class:`ChunkJoin` places as chunks arrive."""


class ChunkJoin:
    """The attribution of ``n`` rows, filled a chunk at a time, in any order.

    :meth:`add` writes a chunk's values, base values and standard errors at its rows, into
    arrays allocated on the first chunk (memory-mapped scratch files when an array is over
    ``spill_mb`` MiB, :func:`~xaudit.result_store.scratch_array`; ``None``: always in memory)
    and keeps only the chunk's small parts (extras, hand-off, metadata). :meth:`attribution`
    joins those in row order: an ``extras`` array without one entry per row of its chunk must
    be equal in every chunk (kept once); metadata is the first chunk's. A hand-off that cannot
    be split by rows (partial dependence, counterfactual searches) means the explainer is not
    row-parallel, and is refused as a :class:`~xaudit.errors.PluginError`.
    """

    def __init__(self, method: str, n: int, spill_mb: float | None = None) -> None:
        self.method, self.n, self.spill_mb = method, n, spill_mb
        self.arrays: dict[str, np.ndarray | None] = {}
        self.parts: list[tuple[int, int, Attribution]] = []

    def add(self, out: ChunkOutput) -> None:
        """Place ``out``'s per-row arrays at its rows; keep the rest for :meth:`attribution`."""
        start, stop = out.record.start, out.record.stop
        attribution = out.attribution
        for name in PER_ROW_ARRAYS:
            part = getattr(attribution, name)
            if not self.parts:
                self.arrays[name] = None if part is None else self._allocate(np.asarray(part))
            if part is None:  # missing from a chunk: missing from the whole (as optional)
                self.arrays[name] = None
            target = self.arrays[name]
            if target is not None:
                target[start:stop] = part
        self.parts.append((start, stop - start, dataclasses.replace(
            attribution, values=np.empty((0,)), base_values=None, std_errors=None)))

    def attribution(self) -> Attribution:
        """The joined attribution (every row's chunk must have been added)."""
        parts = sorted(self.parts, key=lambda part: part[0])
        sizes = [size for _, size, _ in parts]
        if sum(sizes) != self.n:
            raise PluginError(f"explainer {self.method!r}: the chunks hold {sum(sizes)} rows "
                              f"of {self.n}")
        first = parts[0][2]
        extras = {name: _join_extra(self.method, name,
                                    [p.extras.get(name) for _, _, p in parts], sizes)
                  for name in first.extras}
        values = self.arrays["values"]
        assert values is not None  # an Attribution always has values
        return Attribution(
            values=values,
            base_values=self.arrays["base_values"],
            std_errors=self.arrays["std_errors"],
            extras=extras,
            metadata=first.metadata,
            handoff=_join_handoffs(self.method, [p.handoff for _, _, p in parts]),
        )

    def _allocate(self, like: np.ndarray) -> np.ndarray:
        """An array of ``n`` rows shaped like the chunk ``like``'s rows."""
        shape = (self.n, *like.shape[1:])  # spilled exactly when the results store it out of core
        spill = out_of_core(shape, self.spill_mb)
        return scratch_array(shape, like.dtype) if spill else np.empty(shape, like.dtype)


def _join_optional(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    if any(a is None for a in arrays):
        return None
    return np.concatenate([np.asarray(a) for a in arrays])


def _join_extra(method: str, name: str, arrays: list[np.ndarray | None],
                sizes: list[int]) -> np.ndarray:
    if any(a is None for a in arrays):
        raise _not_row_parallel(method, f"extras[{name!r}] is missing from some chunks")
    given = [np.asarray(a) for a in arrays]
    if all(a.ndim and a.shape[0] == size for a, size in zip(given, sizes, strict=True)):
        return np.concatenate(given)
    if all(np.array_equal(a, given[0]) for a in given[1:]):
        return given[0]
    raise _not_row_parallel(method, f"extras[{name!r}] is neither per row nor the same in "
                            "every chunk")


def _join_handoffs(method: str, handoffs: list[Handoff]) -> Handoff:
    first = handoffs[0]
    if any(h.partial_dependence is not None or h.counterfactuals is not None
           for h in handoffs):
        raise _not_row_parallel(method, "its hand-off holds curves or searches over all rows")
    outputs = _join_optional([h.outputs for h in handoffs])
    surrogate = None
    if all(h.surrogate is not None for h in handoffs):
        fits = [h.surrogate for h in handoffs if h.surrogate is not None]
        surrogate = SurrogateFit(np.concatenate([f.r2 for f in fits]),
                                 np.concatenate([f.local_prediction for f in fits]))
    tokens = None
    if all(h.tokens is not None for h in handoffs):
        tokens = tuple(row for h in handoffs for row in (h.tokens or ()))
    return dataclasses.replace(
        first, outputs=outputs, surrogate=surrogate, tokens=tokens,
        marginal=any(h.marginal for h in handoffs),
        caveats=tuple(dict.fromkeys(c for h in handoffs for c in h.caveats)),
        inexact_ops=tuple(sorted({op for h in handoffs for op in h.inexact_ops})))


def _not_row_parallel(method: str, why: str) -> PluginError:
    return PluginError(f"explainer {method!r} is declared row_parallel but its chunks cannot "
                       f"be joined: {why}; declare row_parallel = False")
