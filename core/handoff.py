"""Typed hand-offs: everything explainers and checks leave for the report, declared once.

An explainer returns a :class:`Handoff` in its :class:`~xaudit.explanation.Attribution`, a check
a :class:`CheckHandoff` in its :class:`~xaudit.plugin.CheckOutcome`. The host copies them into
the :class:`~xaudit.explanation.Explanation` and the :class:`~xaudit.results.CheckResult`,
``results.json`` and ``arrays.npz`` store them (:func:`to_record`, :func:`from_record`), and the
report sections read these fields and nothing else a plugin wrote: never a key of ``extras``,
``metadata`` or ``details`` (free-form facts, saved and printed as they are), never a method
name.

Every type checks its own shapes when it is made, and :meth:`Handoff.validate` checks them
against the explanation they belong to, so a plugin that fills a field wrongly fails where its
explanation is made (its own tests, the conformance kit, a run), not silently in a filed report.
Records are frozen and compare by value (arrays element-wise, NaN equal to NaN).
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import numpy as np

from .errors import InputError

ValueKind = Literal["attribution", "global", "effect", "change"]
"""What an explanation's ``values`` are.

``attribution``: each explained row's output attributed to its features (the default).
``global``: each row is one repeat of a measurement over all rows (permutation importance,
probing); no row is a subject. ``effect``: effects read off curves at each row's own values
(centred partial dependence, ICE). ``change``: changes to the row (counterfactual ``x' - x``).
Only attributions are ranked, drawn as waterfalls and turned into reasons by the report.
"""

ARRAY_KEY = "$array"
"""A record refers to a hand-off array as ``{"$array": name}``, ``name`` its key among the
arrays :func:`to_record` returns (stored in ``arrays.npz``)."""

_T = TypeVar("_T")


class _Record:
    """Equality by value for the frozen records below (arrays element-wise, NaN equals NaN)."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name))
                   for f in fields(self))  # type: ignore[arg-type]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.dtype == b.dtype and a.shape == b.shape
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _set(record: object, name: str, value: Any) -> None:
    """Normalise a field of a frozen record in its ``__post_init__``."""
    object.__setattr__(record, name, value)


def _floats(record: object, name: str, ndim: int) -> np.ndarray:
    """Field ``name`` as a float64 array of ``ndim`` dimensions (set back on the record)."""
    array = np.asarray(getattr(record, name), dtype=np.float64)
    if array.ndim != ndim:
        raise InputError(f"{type(record).__name__}.{name} must have {ndim} dimension(s), "
                         f"got shape {array.shape}")
    _set(record, name, array)
    return array


def _text(record: object, name: str) -> None:
    value = getattr(record, name)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{type(record).__name__}.{name} must be a non-empty string, "
                         f"got {value!r}")


def _strings(record: object, name: str) -> tuple[Any, ...]:
    """Field ``name`` as a tuple, refusing one string where a tuple of strings belongs."""
    value = getattr(record, name)
    if isinstance(value, str):
        raise InputError(f"{type(record).__name__}.{name} must be a tuple of strings, not one "
                         "string")
    return tuple(value)


def _sentences(record: object, name: str) -> None:
    """Field ``name`` as a tuple of non-empty strings (set back on the record)."""
    _set(record, name, _strings(record, name))
    for sentence in getattr(record, name):
        if not isinstance(sentence, str) or not sentence.strip():
            raise InputError(f"{type(record).__name__}.{name} holds {sentence!r}, not a "
                             "sentence")


def _shape(owner: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    if array.shape != expected:
        raise InputError(f"{owner} shaped {array.shape}, expected {expected}")


# --- curves --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Band(_Record):
    """A shaded range around a series: ``lower`` and ``upper`` at each x, and what it shows
    (e.g. "mean ± 1.96 s.e. over rows")."""

    lower: np.ndarray
    upper: np.ndarray
    label: str

    def __post_init__(self) -> None:
        _text(self, "label")
        if _floats(self, "lower", 1).shape != _floats(self, "upper", 1).shape:
            raise InputError(f"Band {self.label!r}: lower shaped {self.lower.shape}, upper "
                             f"{self.upper.shape}")


@dataclass(frozen=True, eq=False)
class Series(_Record):
    """One line of a :class:`Curve`: ``y`` at each x, its legend ``label``, an optional band."""

    label: str
    y: np.ndarray
    band: Band | None = None

    def __post_init__(self) -> None:
        _text(self, "label")
        _floats(self, "y", 1)
        if self.band is not None and self.band.lower.shape != self.y.shape:
            raise InputError(f"Series {self.label!r}: band shaped {self.band.lower.shape}, "
                             f"y {self.y.shape}")


@dataclass(frozen=True, eq=False)
class Area(_Record):
    """A number read off a curve (the area under it, say), in the curve's units."""

    label: str
    value: float

    def __post_init__(self) -> None:
        _text(self, "label")
        _set(self, "value", float(self.value))


@dataclass(frozen=True, eq=False)
class Curve(_Record):
    """One figure: series over a shared x axis, with its title, axis labels and areas.

    ``x`` is 1-D with at least two points; every series' ``y`` (and band) has its shape.
    """

    title: str
    x_label: str
    y_label: str
    x: np.ndarray
    series: tuple[Series, ...]
    areas: tuple[Area, ...] = ()

    def __post_init__(self) -> None:
        for name in ("title", "x_label", "y_label"):
            _text(self, name)
        x = _floats(self, "x", 1)
        if x.size < 2:
            raise InputError(f"Curve {self.title!r}: x needs at least two points")
        _set(self, "series", tuple(self.series))
        _set(self, "areas", tuple(self.areas))
        if not self.series:
            raise InputError(f"Curve {self.title!r} has no series")
        for series in self.series:
            if series.y.shape != x.shape:
                raise InputError(f"Curve {self.title!r}: series {series.label!r} shaped "
                                 f"{series.y.shape}, x {x.shape}")


# --- what explainers hand over --------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SurrogateFit(_Record):
    """How well a local surrogate (LIME's) fits the model around each explained row.

    ``r2`` ``(n, k)``: the surrogate's weighted R² on its samples, per row and output slot;
    ``local_prediction`` ``(n, k)``: the surrogate's value at the row itself.
    """

    r2: np.ndarray
    local_prediction: np.ndarray

    def __post_init__(self) -> None:
        _floats(self, "r2", 2)
        _floats(self, "local_prediction", 2)

    def validate(self, n: int, k: int) -> None:
        """Raise :class:`~xaudit.errors.InputError` unless both arrays are ``(n, k)``."""
        _shape("surrogate.r2", self.r2, (n, k))
        _shape("surrogate.local_prediction", self.local_prediction, (n, k))


@dataclass(frozen=True, eq=False)
class PairDependence(_Record):
    """Two-way partial dependence over pairs of features, on NaN-padded grids.

    ``pairs``: the two feature indices of each pair; ``grids`` ``(p, 2, g)``: each pair's two
    grids; ``average`` ``(p, g, g, k)``: the surface over ``grids[p, 0] x grids[p, 1]``.
    """

    pairs: tuple[tuple[int, int], ...]
    grids: np.ndarray
    average: np.ndarray

    def __post_init__(self) -> None:
        _set(self, "pairs", tuple((int(a), int(b)) for a, b in self.pairs))
        grids = _floats(self, "grids", 3)
        g = grids.shape[2]
        if grids.shape[:2] != (len(self.pairs), 2):
            raise InputError(f"PairDependence.grids shaped {grids.shape} for "
                             f"{len(self.pairs)} pair(s)")
        average = _floats(self, "average", 4)
        if average.shape[:3] != (len(self.pairs), g, g):
            raise InputError(f"PairDependence.average shaped {average.shape}, grids "
                             f"{grids.shape}")


@dataclass(frozen=True, eq=False)
class PartialDependence(_Record):
    """One-way partial dependence and optional ICE curves over per-feature grids.

    ``grid`` ``(d, g)``: each feature's grid values, shorter grids padded with NaN;
    ``average`` ``(d, g, k)``: the partial dependence (mean model output) at each grid value;
    ``features``: the features whose curves were computed (the others hold NaN);
    ``individual`` ``(n, d, g, k)``: each explained row's ICE curve, when computed;
    ``pairs``: two-way surfaces, when asked for.
    """

    grid: np.ndarray
    average: np.ndarray
    features: tuple[int, ...]
    individual: np.ndarray | None = None
    pairs: PairDependence | None = None

    def __post_init__(self) -> None:
        _floats(self, "grid", 2)
        _floats(self, "average", 3)
        _set(self, "features", tuple(int(j) for j in self.features))
        if self.individual is not None:
            _floats(self, "individual", 4)

    def validate(self, n: int, k: int, feature_shape: tuple[int, ...]) -> None:
        """Raise :class:`~xaudit.errors.InputError` unless the curves fit ``n`` rows of
        ``feature_shape == (d,)`` features and ``k`` output slots."""
        if len(feature_shape) != 1:
            raise InputError(f"partial_dependence needs one feature axis, the values have "
                             f"{feature_shape}")
        d, g = feature_shape[0], self.grid.shape[1]
        _shape("partial_dependence.grid", self.grid, (d, g))
        _shape("partial_dependence.average", self.average, (d, g, k))
        if self.individual is not None:
            _shape("partial_dependence.individual", self.individual, (n, d, g, k))
        used = set(self.features) | {j for pair in (self.pairs.pairs if self.pairs else ())
                                     for j in pair}
        if any(not 0 <= j < d for j in used):
            raise InputError(f"partial_dependence names features {sorted(used)}, "
                             f"the values have {d}")
        if self.pairs is not None and self.pairs.average.shape[3] != k:
            raise InputError(f"partial_dependence.pairs.average has "
                             f"{self.pairs.average.shape[3]} output slot(s), expected {k}")


@dataclass(frozen=True, eq=False)
class ChangeReason(_Record):
    """A principal reason of a counterfactual: changing ``feature`` alone from ``before`` to
    ``after`` moves the output by ``effect`` towards the target."""

    feature: str
    before: float
    after: float
    effect: float

    def __post_init__(self) -> None:
        for name in ("before", "after", "effect"):
            _set(self, name, float(getattr(self, name)))


@dataclass(frozen=True, eq=False)
class Counterfactuals(_Record):
    """Up to ``c`` counterfactuals per explained row, closest first.

    ``rows`` ``(n, c, d)``: the counterfactual rows (unused slots repeat the row);
    ``valid`` ``(n, c)``: which slots hold a counterfactual verified with the model;
    ``distances`` ``(n, c)``: each one's distance to the row (NaN for unused slots);
    ``outputs`` ``(n, c, m)``: the model's outputs on them; ``reasons``: per explained row, its
    principal reasons, strongest first.
    """

    rows: np.ndarray
    valid: np.ndarray
    distances: np.ndarray
    outputs: np.ndarray
    reasons: tuple[tuple[ChangeReason, ...], ...]

    def __post_init__(self) -> None:
        rows = _floats(self, "rows", 3)
        valid = np.asarray(self.valid, dtype=bool)
        _set(self, "valid", valid)
        _shape("counterfactuals.valid", valid, rows.shape[:2])
        _shape("counterfactuals.distances", _floats(self, "distances", 2), rows.shape[:2])
        if _floats(self, "outputs", 3).shape[:2] != rows.shape[:2]:
            raise InputError(f"counterfactuals.outputs shaped {self.outputs.shape}, rows "
                             f"{rows.shape}")
        _set(self, "reasons", tuple(tuple(row) for row in self.reasons))

    def validate(self, n: int, feature_shape: tuple[int, ...]) -> None:
        """Raise :class:`~xaudit.errors.InputError` unless there are counterfactuals and
        reasons for ``n`` rows of ``feature_shape == (d,)`` features."""
        if len(feature_shape) != 1:
            raise InputError(f"counterfactuals need one feature axis, the values have "
                             f"{feature_shape}")
        _shape("counterfactuals.rows", self.rows, (n, self.rows.shape[1], feature_shape[0]))
        if len(self.reasons) != n:
            raise InputError(f"counterfactuals.reasons has {len(self.reasons)} row(s), "
                             f"expected {n}")


@dataclass(frozen=True, eq=False)
class Handoff(_Record):
    """What an explainer leaves for the report beyond its values (all fields optional).

    ``kind``: what the values are (:data:`ValueKind`).
    ``outputs`` ``(n, k)``: the model's outputs on the explained rows for the targeted slots,
    when the explainer computed them (the report states decisions with them).
    ``surrogate``: the local surrogate's fit (LIME).
    ``partial_dependence``: PDP and ICE curves and two-way surfaces.
    ``counterfactuals``: counterfactual rows and their principal reasons.
    ``tokens``: per explained row, the tokens its values are over, in order (a row may have
    fewer tokens than the value axis has slots: the rest is padding).
    ``marginal``: the model was evaluated on rows in which some features keep the row's values
    and others take reference values independently of them (ablation, KernelSHAP, LIME, ...),
    rows that may not occur in the data when features are correlated; the report says so.
    ``caveats``: sentences the report prints among the limitations (attention weights).
    ``inexact_ops``: operations whose propagation rule does not conserve the output difference
    exactly (DeepLIFT through softmax), so the values need not sum to it.
    """

    kind: ValueKind = "attribution"
    outputs: np.ndarray | None = None
    surrogate: SurrogateFit | None = None
    partial_dependence: PartialDependence | None = None
    counterfactuals: Counterfactuals | None = None
    tokens: tuple[tuple[str, ...], ...] | None = None
    marginal: bool = False
    caveats: tuple[str, ...] = ()
    inexact_ops: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in get_args(ValueKind):
            raise InputError(f"Handoff.kind must be one of {', '.join(get_args(ValueKind))}, "
                             f"got {self.kind!r}")
        if self.outputs is not None:
            _floats(self, "outputs", 2)
        if self.tokens is not None:
            _set(self, "tokens", tuple(tuple(str(t) for t in row) for row in self.tokens))
        _sentences(self, "caveats")
        _set(self, "inexact_ops", tuple(sorted(set(_strings(self, "inexact_ops")))))

    def validate(self, n: int, k: int, feature_shape: tuple[int, ...]) -> None:
        """Raise :class:`~xaudit.errors.InputError` unless every field fits values shaped
        ``(n, *feature_shape, k)``."""
        if self.outputs is not None:
            _shape("outputs", self.outputs, (n, k))
        if self.surrogate is not None:
            self.surrogate.validate(n, k)
        if self.partial_dependence is not None:
            self.partial_dependence.validate(n, k, feature_shape)
        if self.counterfactuals is not None:
            self.counterfactuals.validate(n, feature_shape)
        if self.tokens is not None:
            slots = int(np.prod(feature_shape))
            if len(self.tokens) != n or any(len(row) > slots for row in self.tokens):
                raise InputError(f"tokens: {len(self.tokens)} row(s) of up to "
                                 f"{max(map(len, self.tokens), default=0)} tokens for {n} "
                                 f"row(s) of {slots} value slot(s)")


# --- what checks hand over ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GroupMetric(_Record):
    """A held-out metric on one segment group: its label (a category, a bin such as
    ``[-0.05, 0.05)``), rows, value and interval (``None`` where undefined), and whether the
    group is too small to conclude from."""

    label: str
    rows: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    too_small: bool


@dataclass(frozen=True, eq=False)
class SegmentMetric(_Record):
    """The metric per group of one documented segment feature."""

    feature: str
    groups: tuple[GroupMetric, ...]

    def __post_init__(self) -> None:
        _set(self, "groups", tuple(self.groups))


@dataclass(frozen=True, eq=False)
class MetricEstimate(_Record):
    """A held-out performance figure (a ``performance.*`` check): the metric's label, its
    value on ``rows`` rows with a ``level`` interval (``None`` where undefined or not drawn),
    and per documented segment."""

    label: str
    rows: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    level: float
    segments: tuple[SegmentMetric, ...] = ()

    def __post_init__(self) -> None:
        _text(self, "label")
        _set(self, "segments", tuple(self.segments))


@dataclass(frozen=True, eq=False)
class CheckHandoff(_Record):
    """What a check leaves for the report beyond its value, per-row values and details:
    ``curves``, each drawn as one figure (e.g. a deletion curve against random rankings),
    ``performance``, a held-out metric with its interval and segment groups, and
    ``statements``, its findings in plain words, one sentence each, as summaries and verdict
    lines print them (``followup_lab now holds 89% of attribution; it was absent in the approved
    run.``). Statements are plain text: writers escape them for their format."""

    curves: tuple[Curve, ...] = ()
    statements: tuple[str, ...] = ()
    performance: MetricEstimate | None = None
    """A model-performance check's figure (the model section and fairness evidence show it)."""

    def __post_init__(self) -> None:
        _set(self, "curves", tuple(self.curves))
        _sentences(self, "statements")


# --- results.json + arrays.npz --------------------------------------------------------------


def to_record(handoff: Handoff | CheckHandoff,
              prefix: str = "handoff") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``handoff`` as a JSON-ready record and its arrays, named ``prefix.field.subfield...``.

    The record has every field; an array is replaced by ``{"$array": name}``, a tuple by a
    list. :func:`from_record` reads it back.
    """
    arrays: dict[str, np.ndarray] = {}

    def encode(value: Any, path: str) -> Any:
        if isinstance(value, np.ndarray):
            arrays[path] = value
            return {ARRAY_KEY: path}
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: encode(getattr(value, f.name), f"{path}.{f.name}")
                    for f in fields(value)}
        if isinstance(value, tuple):
            return [encode(item, f"{path}.{i}") for i, item in enumerate(value)]
        return value

    return encode(handoff, prefix), arrays


def from_record(cls: type[_T], record: Any, arrays: Mapping[str, np.ndarray],
                where: str = "handoff") -> _T:
    """Inverse of :func:`to_record`, validating on the way.

    An unknown field, a value of the wrong type, or an array missing from ``arrays`` raises
    :class:`~xaudit.errors.InputError` naming the field's path under ``where``; each record's
    own shape checks run as it is rebuilt. Fields missing from ``record`` take their defaults.
    """
    decoded: _T = _decode(cls, record, arrays, where)
    return decoded


def _decode(hint: Any, value: Any, arrays: Mapping[str, np.ndarray], path: str) -> Any:
    if get_origin(hint) in (Union, types.UnionType):  # only ``X | None`` is declared
        if value is None:
            return None
        (hint,) = (arg for arg in get_args(hint) if arg is not type(None))
    origin = get_origin(hint)
    if hint is np.ndarray:
        name = value.get(ARRAY_KEY) if isinstance(value, dict) and len(value) == 1 else None
        if not isinstance(name, str) or name not in arrays:
            raise InputError(f"{path}: expected an array stored in arrays.npz, got {value!r}")
        return arrays[name]
    if origin is tuple:
        args = get_args(hint)
        if not isinstance(value, list):
            raise InputError(f"{path}: expected a list, got {value!r}")
        kinds = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(value) != len(kinds):
            raise InputError(f"{path}: expected a list of {len(kinds)} item(s), got {value!r}")
        return tuple(_decode(kind, item, arrays, f"{path}.{i}")
                     for i, (kind, item) in enumerate(zip(kinds, value, strict=True)))
    if origin is Literal:
        if value not in get_args(hint):
            raise InputError(f"{path}: expected one of {get_args(hint)}, got {value!r}")
        return value
    if isinstance(hint, type) and is_dataclass(hint):
        return _decode_record(hint, value, arrays, path)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool) and type(value) is hint:
        return value
    raise InputError(f"{path}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _decode_record(cls: type, value: Any, arrays: Mapping[str, np.ndarray], path: str) -> Any:
    if not isinstance(value, dict):
        raise InputError(f"{path}: expected an object, got {value!r}")
    hints = get_type_hints(cls)
    unknown = sorted(set(value) - {f.name for f in fields(cls)})
    if unknown:
        raise InputError(f"{path}: unknown field(s) {', '.join(unknown)} of {cls.__name__}")
    required = {f.name for f in fields(cls)
                if f.default is MISSING and f.default_factory is MISSING}
    missing = sorted(required - set(value))
    if missing:
        raise InputError(f"{path}: missing field(s) {', '.join(missing)} of {cls.__name__}")
    return cls(**{name: _decode(hints[name], item, arrays, f"{path}.{name}")
                  for name, item in value.items()})
