"""One image-axes rule: the checks, occlusion, IG's blurred baseline and lime.image agree.

Every test builds image rows whose layout is known by construction (channels-first,
channels-last or without channels, with height, width and channels of different lengths and
channels whose values differ), and compares each plugin with what the rows are: pixel groups
must be constant along the true channel axis only, occlusion's default window must span the
true channels, IG's blurred baseline and the checks' blur fill must equal
``scipy.ndimage.gaussian_filter`` over the true spatial axes only, and lime.image's
superpixels must cover the true height and width. The rule itself is checked on a table of
shapes, ambiguous ones included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import ndimage

import xaudit
from xaudit.errors import InputError
from xaudit.plugins._support.groups import group_labels
from xaudit.plugins._support.images import image_axes, spatial_blur
from xaudit.plugins._support.removal import fill_values

N, C, H, W = 2, 3, 8, 12
LAYOUTS = {"chw": (C, H, W), "hwc": (H, W, C), "hw": (H, W)}
CHANNEL = {"chw": 0, "hwc": 2, "hw": None}
SPATIAL = {"chw": (1, 2), "hwc": (0, 1), "hw": (0, 1)}


def images(layout: str) -> np.ndarray:
    """Rows in ``layout``: a smooth picture whose channels differ (channel c is scaled by
    c + 1 and shifted by 10 c), so a blur or a window over the wrong axes shows."""
    rng = np.random.default_rng(0)
    planes = rng.random((N, H, W))
    if layout == "hw":
        return planes
    stacked = np.stack([(c + 1) * planes + 10 * c for c in range(C)], axis=-1)  # (N, H, W, C)
    return stacked if layout == "hwc" else np.moveaxis(stacked, -1, 1)


def spatial_sigma(layout: str, sigma: float) -> list[float]:
    widths = [0.0] * (1 + len(LAYOUTS[layout]))
    for axis in SPATIAL[layout]:
        widths[axis + 1] = sigma
    return widths


def summed_linear(weights: np.ndarray) -> Any:
    """``f(x) = sum(weights * x)`` for rows shaped like ``weights``."""
    def f(rows: np.ndarray) -> np.ndarray:
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1) @ weights.ravel()
    return f


# -------------------------------------------------------------------- the rule


@pytest.mark.parametrize(("shape", "channel"), [
    ((3, 32, 32), 0), ((32, 32, 3), 2), ((1, 28, 28), 0), ((28, 28, 1), 2), ((4, 9, 9), 0),
    ((9, 9, 4), 2), ((3, 3, 32), 0), ((32, 3, 3), 2),
    # ambiguous: both ends channel-sized, or neither; the shorter end axis, first on a tie
    ((4, 4, 3), 2), ((3, 4, 4), 0), ((3, 32, 3), 0), ((1, 4, 4), 0), ((4, 4, 1), 2),
    ((64, 64, 10), 2), ((10, 64, 64), 0), ((5, 5, 5), 0),
])
def test_auto_rule_on_a_table_of_shapes(shape: tuple[int, ...], channel: int) -> None:
    axes = image_axes(shape)
    assert axes.channel == channel
    assert axes.spatial == tuple(a for a in range(3) if a != channel)


def test_explicit_values_and_recorded_layouts_decide() -> None:
    for given, channel in (("first", 0), ("last", 2), (0, 0), (2, 2), (-1, 2), (-3, 0),
                           (1, 1)):
        assert image_axes((4, 4, 3), given).channel == channel
    assert image_axes((8, 8)).channel is None
    assert image_axes((8, 8), "none").spatial == (0, 1)

    class Spec:
        layout = "NHWC"

    assert image_axes((3, 8, 3), "auto", Spec()).channel == 2  # the shape alone says 0
    assert image_axes((3, 8, 3), "first", Spec()).channel == 0  # the parameter wins
    for shape, given in (((8, 8), "first"), ((8, 8), 0), ((3, 8, 8), "none"),
                         ((3, 8, 8), 3), ((2, 3, 8, 8), "auto")):
        with pytest.raises(InputError):
            image_axes(shape, given)


def test_every_channel_axis_parameter_has_the_one_type() -> None:
    host = xaudit.create_host(autoload=False)
    plugins = [host.checks.get("deletion"), host.checks.get("insertion"),
               host.explainers.get("occlusion"), host.explainers.get("gradient.integrated"),
               host.explainers.get("lime.image")]
    every = [cls for _, cls in [*host.explainers.items(), *host.checks.items()]
             if "channel_axis" in cls.Params.model_fields]
    assert sorted(c.name for c in every) == sorted(c.name for c in plugins)
    for cls in plugins:
        for value, stored in (("auto", "auto"), (None, "auto"), ("first", "first"),
                              ("last", "last"), ("none", "none"), (2, 2), (-1, -1)):
            assert cls.Params.model_validate({"channel_axis": value}).channel_axis == stored
        assert cls.Params.model_validate({}).channel_axis == "auto"
        for bad in (3, -4, True, "middle"):
            with pytest.raises(ValueError, match="channel_axis"):
                cls.Params.model_validate({"channel_axis": bad})


# -------------------------------------------------------------------- the checks


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_checks_group_pixels_across_the_true_channels(layout: str) -> None:
    X = images(layout)
    labels = group_labels(X, "pixel")
    as_hwc = labels if CHANNEL[layout] is None else np.moveaxis(labels, CHANNEL[layout] + 1, -1)
    if CHANNEL[layout] is not None:  # every channel of a pixel shares its label
        assert np.all(as_hwc == as_hwc[..., :1])
        as_hwc = as_hwc[..., 0]
    np.testing.assert_array_equal(as_hwc[0], np.arange(H * W).reshape(H, W))
    patches = group_labels(X, "patch", patch_size=4)
    assert patches.reshape(N, -1).max(axis=1).tolist() == [H * W // 16 - 1] * N


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_checks_blur_fill_is_scipy_over_the_spatial_axes(layout: str) -> None:
    X = images(layout)
    fill = fill_values(X, "blur", np.random.default_rng(0), background=None, blur_sigma=1.5)
    expected = ndimage.gaussian_filter(X, sigma=spatial_sigma(layout, 1.5), mode="nearest")
    np.testing.assert_allclose(fill, expected, rtol=0, atol=1e-12)
    if CHANNEL[layout] is not None:  # channels are not mixed: each keeps its own offset
        means = np.moveaxis(fill, CHANNEL[layout] + 1, -1).mean(axis=(0, 1, 2))
        assert np.all(np.diff(means) > 9)
    np.testing.assert_array_equal(spatial_blur(X, 1.5, image_axes(LAYOUTS[layout])), fill)


@pytest.mark.parametrize("layout", ["chw", "hwc"])
def test_deletion_auto_equals_the_true_channel_axis(layout: str) -> None:
    X = images(layout)
    model = xaudit.adapt(summed_linear(np.linspace(-1, 1, X[0].size).reshape(X.shape[1:])),
                         adapter="callable", feature_shape=list(X.shape[1:]), modality="image",
                         output_names=["y"])
    explanation = xaudit.explain(model, X, "occlusion", target=0)
    truth = "first" if layout == "chw" else "last"
    results = [xaudit.check("deletion", model, explanation, grouping="pixel", removal="blur",
                            blur_sigma=1.0, steps=3, channel_axis=given)
               for given in ("auto", truth, CHANNEL[layout], CHANNEL[layout] - 3)]
    for other in results[1:]:
        np.testing.assert_array_equal(other.values, results[0].values)
    wrong = xaudit.check("deletion", model, explanation, grouping="pixel", removal="blur",
                         blur_sigma=1.0, steps=3, channel_axis=2 - CHANNEL[layout])
    assert not np.array_equal(wrong.values, results[0].values)


# -------------------------------------------------------------------- occlusion


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_occlusion_window_spans_the_true_channels(layout: str) -> None:
    X = images(layout)
    weights = np.random.default_rng(1).normal(size=X.shape[1:])
    model = xaudit.adapt(summed_linear(weights), adapter="callable",
                         feature_shape=list(X.shape[1:]), modality="image", output_names=["y"])
    ours = xaudit.explain(model, X, "occlusion", target=0)
    window = [C if a == CHANNEL[layout] else 4 for a in range(len(LAYOUTS[layout]))]
    assert ours.metadata["window"] == window
    # brute force: 4 x 4 windows tile the image, so each value is its window's sum of w * x
    contrib = weights * X
    if CHANNEL[layout] is not None:
        contrib = np.moveaxis(contrib, CHANNEL[layout] + 1, -1).sum(axis=-1)  # (N, H, W)
    tiles = contrib.reshape(N, H // 4, 4, W // 4, 4).sum(axis=(2, 4))
    per_pixel = np.repeat(np.repeat(tiles, 4, axis=1), 4, axis=2)  # (N, H, W)
    if CHANNEL[layout] is not None:
        per_pixel = np.moveaxis(np.repeat(per_pixel[..., None], C, axis=-1), -1,
                                CHANNEL[layout] + 1)
    np.testing.assert_allclose(ours.values[..., 0], per_pixel, rtol=1e-10, atol=1e-10)


# -------------------------------------------------------------------- IG's blurred baseline


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_integrated_gradients_blur_is_scipy_over_the_spatial_axes(layout: str) -> None:
    torch = pytest.importorskip("torch")
    X = images(layout)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(X[0].size, 2)).double()
    model = xaudit.adapt(net, device="cpu", dtype="float64", feature_shape=list(X.shape[1:]),
                         modality="image")
    ours = xaudit.explain(model, X, "gradient.integrated", baseline="blur", blur_sigma=1.0,
                          n_steps=4, target=0)
    expected = ndimage.gaussian_filter(X, sigma=spatial_sigma(layout, 1.0), mode="mirror",
                                       truncate=3.0)
    np.testing.assert_allclose(ours.extras["baseline"], expected, rtol=0, atol=1e-12)
    if CHANNEL[layout] is not None:
        stated = xaudit.explain(model, X, "gradient.integrated", baseline="blur",
                                blur_sigma=1.0, n_steps=4, target=0,
                                channel_axis="first" if layout == "chw" else "last")
        np.testing.assert_array_equal(stated.extras["baseline"], ours.extras["baseline"])


# -------------------------------------------------------------------- lime.image


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_lime_image_segments_the_true_height_and_width(layout: str) -> None:
    pytest.importorskip("skimage")
    X = images(layout)
    model = xaudit.adapt(summed_linear(np.ones(X.shape[1:])), adapter="callable",
                         feature_shape=list(X.shape[1:]), modality="image", output_names=["y"])
    ours = xaudit.explain(model, X[:1], "lime.image", segmenter="slic",
                          segmenter_params={"n_segments": 6}, n_samples=30, seed=0, target=0)
    assert ours.extras["segments"].shape == (1, H, W)
    assert ours.metadata["channel_axis"] == {"chw": "first", "hwc": "last", "hw": "none"}[layout]
    values = ours.values[0, ..., 0]
    if CHANNEL[layout] is not None:  # each pixel carries its superpixel's weight on every channel
        values = np.moveaxis(values, CHANNEL[layout], -1)
        assert np.all(values == values[..., :1])
        values = values[..., 0]
    weights = ours.extras["segment_weights"][0, :, 0]
    np.testing.assert_array_equal(values, weights[ours.extras["segments"][0]])
