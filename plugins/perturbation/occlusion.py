"""Occlusion: replace a patch (or a group of features) by a baseline and measure the change.

Zeiler and Fergus 2014, "Visualizing and Understanding Convolutional Networks" (ECCV), section
4.2: slide an occluding window over the input and record how the targeted output drops. For a
window ``W`` and reference ``b``, ``delta_W(x) = f(x) - f(x with x_W := b_W)``; each input value
gets the mean of ``delta_W`` over the windows that cover it. Windows start every ``stride``
along each axis, the last one clipped at the edge, so every value is covered.

On tabular (and text or sequence) rows the default window is one feature: that is exactly the
``ablation`` explainer, and both compute it with
:func:`~xaudit.plugins.perturbation.leave_one_out.leave_one_out`. On images the default window
spans every channel; which axis holds them is :func:`~xaudit.plugins._support.images.image_axes`'s
rule (``channel_axis``). ``groups`` occludes named sets of features together (every member
gets its group's delta, the convention of Captum's ``feature_mask``). Needs only ``predict``:
any model works, and the perturbed rows are evaluated in calls of at most ``max_batch`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.batching import predict_batched, row_blocks
from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins._support.features import resolve_features
from xaudit.plugins._support.images import ChannelAxis, image_axes
from xaudit.plugins._support.pass_size import forward_rows, plan_passes, predict_in_passes
from xaudit.plugins.perturbation.leave_one_out import leave_one_out
from xaudit.registry import Registry
from xaudit.targets import TargetSelection

Unit = tuple[Any, ...]
"""An index into one row: a tuple of slices (a window) or of one index array (a group)."""


class OcclusionParams(PluginParams):
    """Parameters of ``occlusion``."""

    window: list[int] | None = None
    """Shape of the occluding block, one size per axis of a row. Default: one feature for
    tabular, text and sequence rows; all channels x 4 x 4 pixels for images."""
    strides: int | list[int] | None = None
    """Step between windows, per axis or one for all axes; default: the window (no overlap)."""
    groups: list[list[int | str]] | None = None
    """Tabular rows only: sets of features (indices or names) occluded together; features in
    no group are occluded alone. Exclusive with window."""
    baseline: Literal["zero", "value", "mean", "background"] = "zero"
    """What replaces the occluded values: 0, baseline_value, the background mean, or each
    background row in turn (averaging the outputs; cost times the background size)."""
    baseline_value: float = 0.0
    """The replacement value for baseline 'value'."""
    channel_axis: ChannelAxis = "auto"
    """Images: where the channels of a row are (``auto``, ``first``, ``last``, ``none`` or an
    axis number); the default window spans all of them."""
    max_batch: int | None = Field(None, gt=0)
    """Most rows in one model call. Default: sized to the model by timing its first calls,
    within 2**23 input values per call (see docs/explainers/gradients.md)."""


def window_units(shape: tuple[int, ...], window: Sequence[int],
                 strides: Sequence[int]) -> list[Unit]:
    """Every window position: ``ceil((dim - w) / stride) + 1`` starts per axis, clipped."""
    if len(window) != len(shape) or len(strides) != len(shape):
        raise InputError(f"occlusion window {list(window)} and strides {list(strides)} need "
                         f"one size per axis of a row shaped {shape}")
    if any(not 1 <= w <= d for w, d in zip(window, shape, strict=True)) or min(strides) < 1:
        raise InputError(f"occlusion window {list(window)} must fit rows shaped {shape}, "
                         f"with strides >= 1 (got {list(strides)})")
    starts = [[b for b in range(0, (math.ceil((d - w) / s) + 1) * s, s) if b < d]
              for d, w, s in zip(shape, window, strides, strict=True)]
    units: list[Unit] = [()]
    for axis_starts, w in zip(starts, window, strict=True):
        units = [(*u, slice(b, b + w)) for u in units for b in axis_starts]
    return units


def group_units(groups: Sequence[Sequence[int | str]], names: Sequence[str] | None,
                d: int) -> list[Unit]:
    """One unit per group (names or indices), then one per feature in no group."""
    known = None if names is None else tuple(names)
    seen: set[int] = set()
    units: list[Unit] = []
    for group in groups:
        members = resolve_features(list(group), known, d, "occlusion group member")
        for item, i in zip(group, members, strict=True):
            if i in seen:
                raise InputError(f"feature {item!r} is in more than one occlusion group")
            seen.add(i)
        if members:
            units.append((np.asarray(members),))
    units.extend((np.asarray([i]),) for i in range(d) if i not in seen)
    return units


def occlude(model: Model, X: np.ndarray, units: Sequence[Unit], references: np.ndarray,
            max_batch: int | None) -> np.ndarray:
    """Mean over covering units of ``f(x) - E_ref f(x with x_unit := ref_unit)``:
    ``(n, *shape, n_outputs)``. Perturbed rows are built in blocks of at most ``max_batch``
    rows and predicted in calls of ``max_batch`` rows (``None``: sized to the model by
    :func:`~xaudit.plugins._support.pass_size.plan_passes`)."""
    n, shape, n_refs = X.shape[0], X.shape[1:], references.shape[0]
    plan = plan_passes(model, X, tuple(shape), max_batch, kind="forward")
    max_batch = forward_rows(max_batch, tuple(shape))
    full = predict_in_passes(model, X, plan)
    total = np.zeros((n, *shape, full.shape[1]))
    count = np.zeros(shape)
    per_block = max(1, min(len(units), max_batch // n_refs))
    for unit_block in row_blocks(len(units), per_block):
        block_units = units[unit_block]
        for block in row_blocks(n, max_batch, per_block * n_refs):
            r0, rows = block.start, X[block]
            batch = np.repeat(rows[:, None, None], len(block_units), axis=1).repeat(n_refs, axis=2)
            for g, unit in enumerate(block_units):
                batch[:, g][(slice(None), slice(None), *unit)] = references[(slice(None), *unit)]
            preds = predict_in_passes(model, batch.reshape(-1, *shape), plan).reshape(
                rows.shape[0], len(block_units), n_refs, -1).mean(axis=2)
            deltas = full[r0:r0 + rows.shape[0], None, :] - preds
            for g, unit in enumerate(block_units):
                target = total[(slice(r0, r0 + rows.shape[0]), *unit)]
                target += deltas[:, g].reshape(rows.shape[0], *([1] * (target.ndim - 2)), -1)
                total[(slice(r0, r0 + rows.shape[0]), *unit)] = target
        for unit in block_units:
            count[unit] += 1
    return np.asarray(total / np.maximum(count, 1)[..., None])


class Occlusion(Explainer):
    """Sliding-window occlusion for images, feature (group) ablation for tabular rows."""

    name = "occlusion"
    row_parallel = True
    summary = "Occlusion: output change when a window or feature group is replaced by a baseline."
    description = (
        "A window (or a group of features) slides over the input; the values it covers are "
        "replaced by a baseline and the drop of the explained output, f(x) - f(x with the window "
        "replaced), is recorded. Each input value receives the mean drop over the windows that "
        "cover it. Windows start every stride along each axis, the last one clipped at the edge, "
        "so every value is covered.")
    paper = "Zeiler and Fergus 2014, Visualizing and Understanding Convolutional Networks"
    limitations = (
        "The result depends on the window size, stride and baseline; a window smaller than "
        "the objects in an image finds edges, a larger one blurs the map.",
        "Occluded inputs can lie far from the data the model saw (a grey patch, a zero).",
        "Does not add up to the output: interactions between windows are not shared out.",
    )
    Params = OcclusionParams
    params: OcclusionParams
    modalities = frozenset({"tabular", "image", "text", "sequence"})
    default_target = "predicted"

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Occlusion values ``(n, *shape, k)``; base values ``E_ref f(ref)``."""
        p = self.params
        shape = tuple(X.shape[1:])
        references = self.references(X, background)
        meta: dict[str, Any] = {"baseline": p.baseline, "n_references": int(references.shape[0])}
        if p.groups is not None:
            if p.window is not None or len(shape) != 1:
                raise InputError("occlusion groups are for tabular rows, without a window")
            units = group_units(p.groups, model.input_spec.feature_names, shape[0])
            meta["n_groups"] = len(p.groups)
        elif p.window is None and model.input_spec.modality != "image":
            values, base_values = leave_one_out(model, X, references, targets,
                                                forward_rows(p.max_batch, shape))
            return Attribution(values=values, base_values=base_values,
                               metadata={**meta, "window": [1] * len(shape)})
        else:
            window = p.window or default_window(model, shape, p.channel_axis)
            strides = p.strides if p.strides is not None else window
            strides = [strides] * len(shape) if isinstance(strides, int) else strides
            units = window_units(shape, window, strides)
            meta.update(window=list(window), strides=list(strides), n_windows=len(units))
        deltas = occlude(model, X, units, references, p.max_batch)
        index = targets.indices.reshape(X.shape[0], *([1] * len(shape)), targets.n_slots)
        values = np.take_along_axis(deltas, index, axis=-1)
        base = predict_batched(model, references, forward_rows(p.max_batch, shape)).mean(axis=0)
        base_values = targets.take(np.ascontiguousarray(
            np.broadcast_to(base, (X.shape[0], base.size))))
        return Attribution(values=values, base_values=base_values, metadata=meta,
                           handoff=Handoff(marginal=True))

    def references(self, X: np.ndarray, background: np.ndarray | None) -> np.ndarray:
        """Reference rows ``(R, *shape)`` in the dtype of ``X``."""
        p = self.params
        if p.baseline in ("zero", "value"):
            value = 0.0 if p.baseline == "zero" else p.baseline_value
            return np.full((1, *X.shape[1:]), value, dtype=X.dtype)
        if background is None:
            raise InputError(f"occlusion with baseline {p.baseline!r} needs a background; "
                             "pass background=... or use baseline 'zero' or 'value'")
        bg = np.asarray(background)
        if p.baseline == "mean":
            return np.asarray(bg.mean(axis=0, keepdims=True), dtype=X.dtype)
        return bg.astype(X.dtype, copy=False)


def default_window(model: Model, shape: tuple[int, ...],
                   channel_axis: int | str = "auto") -> list[int]:
    """All channels by 4 x 4 pixels for images; one value elsewhere."""
    if model.input_spec.modality != "image":
        return [1] * len(shape)
    axis = image_axes(shape, channel_axis, model.input_spec).channel
    return [d if a == axis else min(4, d) for a, d in enumerate(shape)]


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``occlusion``."""
    registry.add(Occlusion)
