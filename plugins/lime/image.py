"""LIME for images (Ribeiro, Singh and Guestrin 2016, "Why Should I Trust You?").

An image is cut into superpixels by scikit-image (``quickshift``, ``slic`` or ``felzenszwalb``;
Vedaldi and Soatto 2008, Achanta et al. 2012, Felzenszwalb and Huttenlocher 2004). A sample
switches each superpixel on or off at random (probability 1/2; sample 0 keeps all); switched-off
superpixels are painted with ``hide_color`` (each superpixel's mean colour, or a constant).
Samples are weighted by ``exp(-D^2 / (2 w^2))`` with ``D`` the cosine distance between the
sample's on/off vector and all-on (``w = 0.25``), and a weighted ridge over the superpixels is
fitted per targeted output (see :mod:`xaudit.plugins.lime.common`).

Rows are given in the model's own layout: ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``
(``channel_axis`` says which; ``auto`` follows
:func:`~xaudit.plugins._support.images.image_axes`, the rule every image method uses).
Segmentation sees the image channels-last, min-max scaled to [0, 1]; perturbed images keep the
model's layout and values. Values are per-pixel maps ``(n, *row_shape, k)``: each pixel (every
channel) carries its superpixel's weight. ``extras["segments"]`` ``(n, H, W)``
holds the superpixel labels and ``extras["segment_weights"]`` ``(n, max_segments, k)`` the
weights (0 past a row's ``extras["n_segments"]``). ``metadata`` repeats, per row and fitted
output slot (keyed ``"0"``, ``"1"``, ...), the superpixel weights (``segment_weights``) and the
superpixels of the positive mask (``masks``; :func:`image_mask` turns them into pixel masks).
Perturbed images go to the model in calls of ``batch_size`` images; ``metadata["model_calls"]``
counts them. The surrogates' fit is in ``handoff.surrogate``, the model's outputs in
``handoff.outputs``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.batching import row_blocks
from xaudit.errors import CapabilityError, InputError
from xaudit.explanation import Attribution, Explanation
from xaudit.handoff import Handoff, SurrogateFit
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer
from xaudit.plugins._support.images import (
    ChannelAxis,
    ImageAxes,
    channel_axis_name,
    from_hwc,
    image_axes,
    to_hwc,
)
from xaudit.plugins.lime.common import LimeFitParams, cosine_distance_to_ones, fit_local, kernel
from xaudit.registry import Registry
from xaudit.targets import TargetSelection

DEFAULT_SEGMENTER_PARAMS: dict[str, dict[str, Any]] = {
    "quickshift": {"kernel_size": 4, "max_dist": 200, "ratio": 0.2},
    "slic": {"n_segments": 50, "compactness": 10.0, "start_label": 0},
    "felzenszwalb": {"scale": 100.0, "sigma": 0.5, "min_size": 50},
}


class LimeImageParams(LimeFitParams):
    """Parameters of ``lime.image``."""

    n_samples: int = Field(1000, ge=2, le=100_000)
    """Perturbed images per explained image (the first is the image itself)."""
    num_features: int | None = Field(None, ge=1)
    """Superpixels the local model may use; ``None``: all of them."""
    segmenter: Literal["quickshift", "slic", "felzenszwalb"] = "quickshift"
    """scikit-image segmentation algorithm."""
    segmenter_params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    """Keyword arguments of the segmenter, over the defaults (quickshift: kernel_size 4,
    max_dist 200, ratio 0.2; slic: n_segments 50, compactness 10; felzenszwalb: scale 100,
    sigma 0.5, min_size 50)."""
    hide_color: Literal["mean"] | float = "mean"
    """Paint of a switched-off superpixel: its mean colour per channel, or a constant."""
    channel_axis: ChannelAxis = "auto"
    """Where the channels are in a row: ``first`` ``(C, H, W)``, ``last`` ``(H, W, C)``,
    ``none`` ``(H, W)``, an axis number, or ``auto`` (the model's recorded layout, else the
    row shape)."""
    batch_size: int = Field(100, ge=1)
    """Perturbed images per model call."""
    top_labels: int | None = Field(None, ge=1)
    """Fit only the ``top_labels`` targeted outputs the model scores highest on the unperturbed
    image (lime's ``top_labels``; use with ``target: all``); the other slots stay 0 and
    ``metadata["top_labels"]`` lists the fitted output indices per row."""
    mask_segments: int = Field(5, ge=1)
    """How many superpixels ``metadata["masks"]`` lists per row and output (largest positive
    weights first, the view of lime's ``get_image_and_mask(positive_only=True)``)."""


class LimeImage(Explainer):
    """Local weighted linear surrogates over the presence of superpixels."""

    name = "lime.image"
    row_parallel = True
    extra = "image"
    summary = "LIME for images: superpixel weights of a local linear surrogate, as pixel maps."
    description = (
        "Cuts each image into superpixels and samples images in which superpixels are switched "
        "off at random (painted with their mean colour or a constant). Samples are weighted by "
        "their closeness to the full image (an exponential kernel on the cosine distance of the "
        "on/off vectors) and a weighted ridge regression of the model's outputs on the "
        "superpixels' on/off indicators is fitted. Each pixel receives its superpixel's weight; "
        "the surrogate's weighted R2 says how well the local linear fit holds.")
    paper = ("Ribeiro, Singh and Guestrin 2016, 'Why Should I Trust You?': Explaining the "
             "Predictions of Any Classifier")
    limitations = (
        "Weights are per superpixel: the segmentation (algorithm and its parameters) decides "
        "what can be found, and different segmentations give different maps.",
        "Greyed-out superpixels create images unlike the training data.",
        "Weights explain a local linear surrogate; check its weighted R2 (handoff.surrogate.r2).",
    )
    Params = LimeImageParams
    params: LimeImageParams
    modalities = frozenset({"image"})
    stochastic = True

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Per-pixel maps ``(n, *row_shape, k)``, intercepts, segments and segment weights."""
        p = self.params
        axes = image_axes(tuple(X.shape[1:]), p.channel_axis, model.input_spec)
        n, k = X.shape[0], targets.n_slots
        segments = [_segment(to_hwc(np.asarray(X[r:r + 1], dtype=np.float64), axes)[0], p)
                    for r in range(n)]
        max_seg = max(int(s.max()) + 1 for s in segments)
        values = np.zeros((n, *X.shape[1:], k))
        seg_weights = np.zeros((n, max_seg, k))
        base, r2 = np.zeros((n, k)), np.zeros((n, k))
        local, outputs = np.zeros((n, k)), np.zeros((n, k))
        calls = 0
        fitted: list[list[int]] = []
        masks: list[dict[str, list[int]]] = []
        weights_meta: list[dict[str, list[float]]] = []
        for r in range(n):
            seg = segments[r]
            d = int(seg.max()) + 1
            Z = np.ones((p.n_samples, d))
            Z[1:] = rng.integers(0, 2, size=(p.n_samples - 1, d))
            dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
            image = np.asarray(X[r], dtype=dtype)
            hidden = _hidden(np.asarray(X[r], dtype=np.float64), seg, axes,
                             p.hide_color).astype(dtype)
            preds = []
            for part in row_blocks(p.n_samples, p.batch_size):
                on = from_hwc(Z[part].astype(bool)[:, seg][..., None], axes)  # in row layout
                preds.append(model.predict(np.where(on, image, hidden))[:, targets.indices[r]])
                calls += 1
            Y = np.concatenate(preds)
            slots = np.arange(k)
            if p.top_labels is not None:
                slots = np.sort(np.argsort(-Y[0], kind="stable")[:p.top_labels])
            fitted.append([int(targets.indices[r, j]) for j in slots])
            w = kernel(cosine_distance_to_ones(Z), p.kernel_width or 0.25)
            fit = fit_local(Z, Y[:, slots], w, p)
            seg_weights[r, :d][:, slots] = fit.coef
            pixel = seg_weights[r, :d][seg]  # (H, W, k)
            values[r] = from_hwc(pixel[None, :, :, None], axes)[0]
            base[r, slots], r2[r, slots] = fit.intercept, fit.r2
            local[r, slots], outputs[r] = fit.local_prediction, Y[0]
            masks.append({str(j): _top_positive(seg_weights[r, :d, j], p.mask_segments)
                          for j in slots})
            weights_meta.append({str(j): seg_weights[r, :d, j].tolist() for j in slots})
        return Attribution(
            values=values, base_values=base,
            extras={"segments": np.stack(segments), "segment_weights": seg_weights,
                    "n_segments": np.asarray([int(s.max()) + 1 for s in segments])},
            metadata={"segmenter": p.segmenter,
                      "segmenter_params": {**DEFAULT_SEGMENTER_PARAMS[p.segmenter],
                                           **p.segmenter_params},
                      "channel_axis": channel_axis_name(axes),
                      "hide_color": p.hide_color, "n_samples": p.n_samples,
                      "model_calls": calls, "batch_size": p.batch_size,
                      "kernel_width": float(p.kernel_width or 0.25),
                      "segments": "extras['segments']: (n, H, W) superpixel label of each pixel",
                      "n_segments": [int(s.max()) + 1 for s in segments],
                      "segment_weights": weights_meta,
                      "masks": masks, "top_labels": fitted},
            handoff=Handoff(outputs=outputs, surrogate=SurrogateFit(r2, local)),
        )


def _top_positive(weights: np.ndarray, count: int) -> list[int]:
    """Superpixels with the ``count`` largest positive weights, largest first."""
    order = np.argsort(-weights, kind="stable")[:count]
    return [int(s) for s in order if weights[s] > 0]


def _segment(image: np.ndarray, p: LimeImageParams) -> np.ndarray:
    """Superpixel labels ``(H, W)`` numbered ``0 .. m-1``."""
    try:
        from skimage import segmentation
    except ImportError as exc:  # pragma: no cover - scikit-image is in the image extra
        raise CapabilityError("lime.image needs scikit-image: pip install 'xaudit[image]'") from exc
    lo, hi = float(image.min()), float(image.max())
    scaled = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    if scaled.shape[-1] == 1:
        scaled = np.repeat(scaled, 3, axis=-1)
    elif scaled.shape[-1] != 3:
        scaled = scaled[..., :3] if scaled.shape[-1] > 3 else np.repeat(scaled[..., :1], 3, -1)
    kwargs = {**DEFAULT_SEGMENTER_PARAMS[p.segmenter], **p.segmenter_params}
    try:
        labels = getattr(segmentation, p.segmenter)(scaled, **kwargs)
    except TypeError as exc:
        raise InputError(f"segmenter_params for {p.segmenter}: {exc}") from None
    _, dense = np.unique(labels, return_inverse=True)
    return np.asarray(dense.reshape(labels.shape), dtype=np.int64)


def _hidden(image: np.ndarray, seg: np.ndarray, axes: ImageAxes,
            hide: float | str) -> np.ndarray:
    """The image with every superpixel painted its hide colour (model layout)."""
    if hide != "mean":
        return np.full_like(image, float(hide))
    last = to_hwc(image[None], axes)[0]  # (H, W, C)
    m = int(seg.max()) + 1
    counts = np.bincount(seg.ravel(), minlength=m)[:, None]
    sums = np.stack([np.bincount(seg.ravel(), weights=last[..., c].ravel(), minlength=m)
                     for c in range(last.shape[-1])], axis=1)
    painted = (sums / np.maximum(counts, 1))[seg]  # (H, W, C)
    return np.asarray(from_hwc(painted[None], axes)[0])


def image_mask(explanation: Explanation, row: int = 0, slot: int = 0, num_features: int = 5,
               positive_only: bool = True, min_weight: float = 0.0) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the ``num_features`` superpixels with the largest weights
    (only positive ones when ``positive_only``, else largest by magnitude) for a row and an
    output slot of a ``lime.image`` explanation (the view of lime's ``get_image_and_mask``)."""
    seg = np.asarray(explanation.extras["segments"][row])
    m = int(np.asarray(explanation.extras["n_segments"])[row])
    weights = np.asarray(explanation.extras["segment_weights"])[row, :m, slot]
    order = np.argsort(-weights if positive_only else -np.abs(weights), kind="stable")
    keep = [s for s in order[:num_features]
            if (weights[s] > min_weight if positive_only else abs(weights[s]) > min_weight)]
    return np.isin(seg, keep)


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``lime.image``."""
    registry.add(LimeImage)
