"""Selecting rows, features and output slots of an explanation: ``exp[rows, features, outputs]``.

Every array that runs along a selected axis is cut the same way, so the result is an
explanation like any other (it validates, saves, renders and can be checked):

- ``values`` and ``std_errors`` ``(n, *feature_shape, k)``; ``base_values`` and
  ``target_indices`` ``(n, k)``; ``inputs`` ``(n, *feature_shape)``; the caller's row index;
- the hand-off (:mod:`xaudit.handoff`): model outputs and surrogate fit ``(n, k)``, partial
  dependence (grids, curves, ICE rows, two-way pairs whose features are both kept),
  counterfactuals (rows, validity, distances, outputs and reasons of the kept rows);
- ``extras`` by shape: an array shaped like the values, like the base values ``(n, k)``, like
  the inputs ``(n, *feature_shape)``, pairwise over features ``(n, *fs, *fs, k)`` (SHAP
  interaction values) or one number per row ``(n,)``, each with a leading axis of ``n`` (cut)
  or 1 (shared by every row, kept).

Rules a caller should know: an integer keeps its axis (``exp[0]`` is a one-row explanation,
``exp[:, "bmi"]`` has one feature); features are selected on the flattened feature axis, so
selecting features of image rows gives flat rows of the chosen pixels; a feature selection
that leaves features out makes the explanation non-additive (the kept values no longer add up
to the output minus the base value) and drops token labels and the multi-input layout; an
extra whose axes cannot be told from its shape is dropped when features or outputs are
selected, and its name is listed in ``metadata["selection"]["dropped_extras"]``.
``metadata["selection"]`` records the positions taken, relative to the explanation first
computed; the rest of ``metadata`` still describes that whole computation.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .handoff import Counterfactuals, Handoff, PairDependence, PartialDependence, SurrogateFit

if TYPE_CHECKING:
    from .explanation import Explanation

Key = Any
"""An integer, a name (features, outputs), a slice, a boolean mask or a list of these."""


def positions(key: Key, size: int, names: Sequence[str] | None, axis: str) -> np.ndarray:
    """``key`` as integer positions along an axis of ``size`` entries named ``names``."""
    if isinstance(key, slice):
        found = np.arange(size)[key]
    elif isinstance(key, str):
        found = np.array([_by_name(key, names, axis)])
    elif isinstance(key, int | np.integer) and not isinstance(key, bool):
        found = np.array([_by_position(int(key), size, axis)])
    else:
        # lists keep each item's type (names beside positions); arrays keep their dtype
        items = np.asarray(key, dtype=object if isinstance(key, list | tuple) else None)
        if items.ndim != 1:
            raise InputError(f"select {axis}s with an integer, a name, a slice, a boolean mask "
                             f"or a list, not an array shaped {items.shape}")
        if items.size and all(isinstance(v, bool | np.bool_) for v in items.tolist()):
            if items.size != size:
                raise InputError(f"a boolean mask over {axis}s needs {size} entries, "
                                 f"got {items.size}")
            found = np.flatnonzero(items.astype(bool))
        else:
            found = np.array([positions(v, size, names, axis)[0] for v in items.tolist()],
                             dtype=np.int64)
    if found.size == 0:
        raise InputError(f"the selection keeps no {axis}; select at least one")
    return found.astype(np.int64)


def _by_position(index: int, size: int, axis: str) -> int:
    if not -size <= index < size:
        raise InputError(f"{axis} {index} is out of range: there are {size} {axis}s")
    return index % size


def _by_name(name: str, names: Sequence[str] | None, axis: str) -> int:
    if axis == "row":
        raise InputError(f"rows are selected by position, not by label ({name!r}); find the "
                         "positions of labels with exp.to_frame().index")
    known = list(names or ())
    if name in known:
        return known.index(name)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"did you mean {', '.join(map(repr, close))}?" if close else (
        f"{axis}s are {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}")
    raise InputError(f"no {axis} named {name!r}; {hint}")


def select_key(explanation: Explanation, key: Key) -> Explanation:
    """``explanation[key]``: ``key`` is ``rows``, ``(rows, features)`` or
    ``(rows, features, outputs)``; ``:`` keeps a whole axis."""
    parts = key if isinstance(key, tuple) else (key,)
    if len(parts) > 3:
        raise InputError(f"an explanation is indexed as exp[rows, features, outputs]; got "
                         f"{len(parts)} parts")
    rows, features, outputs = (*[None if _whole(p) else p for p in parts], None, None)[:3]
    return select(explanation, rows=rows, features=features, outputs=outputs)


def _whole(part: Key) -> bool:
    return (isinstance(part, slice) and part == slice(None)) or part is Ellipsis


def select(explanation: Explanation, *, rows: Key = None, features: Key = None,
           outputs: Key = None) -> Explanation:
    """The explanation of the selected ``rows``, ``features`` and ``outputs`` (``None``: all);
    see the module docstring for what is cut and how."""
    exp = explanation
    n, k, shape = exp.n_rows, exp.values.shape[-1], exp.feature_shape
    d = int(np.prod(shape))
    r = np.arange(n) if rows is None else positions(rows, n, None, "row")
    f = None if features is None else positions(features, d, exp.feature_names, "feature")
    o = None if outputs is None else positions(outputs, k, exp.output_names, "output")
    if f is not None and len(set(f.tolist())) != f.size:
        twice = sorted({exp.feature_names[i] for i in f.tolist() if f.tolist().count(i) > 1})
        raise InputError(f"feature(s) selected more than once: {', '.join(twice)}")
    cut = _Cut(r, f, o, n, k, shape)
    extras, dropped = cut.extras(exp.extras)
    keeps_all = f is None or sorted(f.tolist()) == list(range(d))
    metadata = {key: value for key, value in exp.metadata.items()
                if keeps_all or key != "inputs"}
    metadata["selection"] = _composed(exp.metadata.get("selection"), r, f, o, dropped)
    inputs = exp.inputs[r]
    if tuple(exp.inputs.shape[1:]) == shape and f is not None:
        inputs = inputs.reshape(r.size, d)[:, f]
    feature_names = exp.feature_names
    if f is not None and feature_names:
        feature_names = tuple(feature_names[i] for i in f)
    return dataclasses.replace(
        exp,
        values=cut.like_values(exp.values),
        base_values=None if exp.base_values is None else cut.per_output(exp.base_values),
        std_errors=None if exp.std_errors is None else cut.like_values(exp.std_errors),
        feature_names=feature_names,
        output_names=exp.output_names if o is None else tuple(exp.output_names[i] for i in o),
        target_indices=cut.per_output(exp.target_indices),
        inputs=inputs,
        extras=extras,
        metadata=metadata,
        additive=exp.additive and keeps_all,
        handoff=cut.handoff(exp.handoff),
        row_index=None if exp.row_index is None else exp.row_index.take(r),
    )


def _composed(previous: dict[str, Any] | None, r: np.ndarray, f: np.ndarray | None,
              o: np.ndarray | None, dropped: list[str]) -> dict[str, Any]:
    """Positions relative to the first explanation, through any earlier selection."""
    before = previous or {}

    def through(key: str, taken: np.ndarray | None) -> list[int] | None:
        earlier = before.get(key)
        if taken is None:
            return earlier
        return [int(earlier[i]) if earlier is not None else int(i) for i in taken]

    return {"rows": through("rows", r), "features": through("features", f),
            "outputs": through("outputs", o),
            "dropped_extras": sorted({*before.get("dropped_extras", []), *dropped})}


@dataclasses.dataclass(frozen=True)
class _Cut:
    """Positions kept along rows ``r``, flat features ``f`` and output slots ``o``
    (``None``: all) of values shaped ``(n, *shape, k)``."""

    r: np.ndarray
    f: np.ndarray | None
    o: np.ndarray | None
    n: int
    k: int
    shape: tuple[int, ...]

    def rows(self, a: np.ndarray) -> np.ndarray:
        """Rows cut when ``a`` has one per explained row (a leading 1 is shared, kept)."""
        return a[self.r] if a.shape[0] == self.n else a

    def feats(self, a: np.ndarray, start: int = 1) -> np.ndarray:
        """Features cut on the flattened feature axis starting at axis ``start``."""
        if self.f is None:
            return a
        flat = a.reshape(*a.shape[:start], -1, *a.shape[start + len(self.shape):])
        return np.take(flat, self.f, axis=start)

    def outs(self, a: np.ndarray) -> np.ndarray:
        """Output slots cut on the last axis."""
        return a if self.o is None else a[..., self.o]

    def like_values(self, a: np.ndarray) -> np.ndarray:
        """``(n, *shape, k)``."""
        return self.outs(self.feats(self.rows(a)))

    def per_output(self, a: np.ndarray) -> np.ndarray:
        """``(n, k)``."""
        return self.outs(self.rows(a))

    def extras(self, extras: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
        """Each extra cut by the axes its shape shows; unreadable ones dropped (named)."""
        kept, dropped = {}, []
        narrows = self.f is not None or self.o is not None
        for name, value in extras.items():
            a = np.asarray(value)
            body = a.shape[1:] if a.ndim and a.shape[0] in (self.n, 1) else None
            fits_outputs, fits_features = body == (self.k,), body == self.shape
            if body is None or (fits_outputs and fits_features and narrows):
                cut = None if narrows else (self.rows(a) if a.ndim else a)
            elif body == (*self.shape, self.k):
                cut = self.like_values(a)
            elif fits_outputs:
                cut = self.per_output(a)
            elif fits_features:
                cut = self.feats(self.rows(a))
            elif body == (*self.shape, *self.shape, self.k) and len(self.shape) == 1:
                cut = self.outs(self.feats(self.feats(self.rows(a)), start=2))
            elif body == ():
                cut = self.rows(a)
            else:
                cut = None if narrows else self.rows(a)
            if cut is None:
                dropped.append(name)
            else:
                kept[name] = cut
        return kept, dropped

    def handoff(self, h: Handoff) -> Handoff:
        """The hand-off of the kept rows, features and slots."""
        changes: dict[str, Any] = {}
        if h.outputs is not None:
            changes["outputs"] = self.per_output(h.outputs)
        if h.surrogate is not None:
            changes["surrogate"] = SurrogateFit(self.per_output(h.surrogate.r2),
                                                self.per_output(h.surrogate.local_prediction))
        if h.partial_dependence is not None:
            changes["partial_dependence"] = self.partial_dependence(h.partial_dependence)
        if h.counterfactuals is not None:
            c = h.counterfactuals
            rows = c.rows[self.r]
            changes["counterfactuals"] = Counterfactuals(
                rows=rows if self.f is None else rows[..., self.f], valid=c.valid[self.r],
                distances=c.distances[self.r], outputs=c.outputs[self.r],
                reasons=tuple(c.reasons[i] for i in self.r))
        if h.tokens is not None:
            changes["tokens"] = None if self.f is not None else tuple(h.tokens[i]
                                                                      for i in self.r)
        return dataclasses.replace(h, **changes)

    def partial_dependence(self, p: PartialDependence) -> PartialDependence:
        """Curves of the kept features and slots, ICE of the kept rows, pairs of kept
        features."""
        grid, average, features, pairs = p.grid, p.average, p.features, p.pairs
        individual = None if p.individual is None else p.individual[self.r]
        if self.f is not None:
            new = {int(old): i for i, old in enumerate(self.f)}
            grid, average = grid[self.f], average[self.f]
            individual = None if individual is None else individual[:, self.f]
            features = tuple(sorted(new[j] for j in features if j in new))
            if pairs is not None:
                keep = [i for i, (a, b) in enumerate(pairs.pairs) if a in new and b in new]
                pairs = PairDependence(
                    tuple((new[pairs.pairs[i][0]], new[pairs.pairs[i][1]]) for i in keep),
                    pairs.grids[keep], pairs.average[keep]) if keep else None
        if pairs is not None and self.o is not None:
            pairs = dataclasses.replace(pairs, average=self.outs(pairs.average))
        return PartialDependence(grid, self.outs(average), features,
                                 None if individual is None else self.outs(individual), pairs)
