"""Gradient methods and occlusion against Captum 0.9 (the oracle), closed forms and scipy.

Models: the seeds' ``SimpleNN`` MLP (10-64-32-2) and ``SimpleCNN`` (3x32x32, three conv
blocks), a smooth tanh/softplus MLP for the completeness bound, a two-input torch model, and a
Keras 3 CNN (torch backend) on the 8x8 digits exported to ONNX. Deterministic methods are
compared to Captum to 1e-5 of the largest value; stochastic ones (SmoothGrad, GradientSHAP)
in expectation, within a few of our own reported standard errors.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
nn = torch.nn
F = torch.nn.functional

from seed_models import SimpleCNN, SimpleNN  # noqa: E402

import xaudit  # noqa: E402
from xaudit.errors import CapabilityError, InputError  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:Input Tensor .* did not already require gradients:UserWarning")
"""Captum's notice when it sets requires_grad on our shared inputs itself."""

REL = 1e-5
"""Deterministic methods: max |ours - captum| <= REL * max |captum|."""


def close(ours: np.ndarray, theirs: Any, rel: float = REL, atol: float = 0.0) -> None:
    theirs = np.asarray(theirs.detach().numpy() if hasattr(theirs, "detach") else theirs)
    scale = float(np.abs(theirs).max())
    assert scale > 0
    err = float(np.abs(np.asarray(ours) - theirs).max())
    assert err <= rel * scale + atol, f"max abs error {err:.3g} > {rel} * {scale:.3g} + {atol}"


def output_scale(model: Any, X: np.ndarray) -> float:
    """Occlusion values are differences of float32 outputs: their rounding is relative to the
    outputs' size, not to the (possibly much smaller) difference."""
    return float(np.abs(model.predict(X)).max())


class TwoInput(nn.Module):
    """A dense branch (5 features) and a conv branch (1x6x6 image)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(5, 8)
        self.conv = nn.Conv2d(1, 2, 3)
        self.head = nn.Linear(8 + 2 * 4 * 4, 3)

    def forward(self, tabular: Any, image: Any) -> Any:
        joint = torch.cat([torch.tanh(self.dense(tabular)), F.softplus(self.conv(image))
                           .flatten(1)], 1)
        return self.head(joint)


@pytest.fixture(scope="module")
def mlp() -> tuple[Any, Any, np.ndarray]:
    torch.manual_seed(0)
    net = SimpleNN().eval()
    X = np.random.default_rng(0).normal(size=(12, 10)).astype(np.float32)
    return net, xaudit.adapt(net, device="cpu"), X


@pytest.fixture(scope="module")
def cnn() -> tuple[Any, Any, np.ndarray]:
    torch.manual_seed(0)
    net = SimpleCNN().eval()
    X = np.random.default_rng(1).random((3, 3, 32, 32)).astype(np.float32)
    return net, xaudit.adapt(net, device="cpu", feature_shape=[3, 32, 32]), X


def predicted(net: Any, X: np.ndarray) -> Any:
    with torch.no_grad():
        return net(torch.tensor(X)).argmax(1)


# -------------------------------------------------------------------- saliency, x gradient


@pytest.mark.parametrize("absolute", [True, False])
def test_saliency_equals_captum(mlp: Any, cnn: Any, absolute: bool) -> None:
    for net, model, X in (mlp, cnn):
        ours = xaudit.explain(model, X, method="gradient.saliency", absolute=absolute)
        assert ours.values.shape == (*X.shape, 1)
        theirs = captum_attr.Saliency(net).attribute(
            torch.tensor(X, requires_grad=True), target=predicted(net, X), abs=absolute)
        close(ours.values[..., 0], theirs)
        np.testing.assert_array_equal(ours.target_indices[:, 0], predicted(net, X).numpy())


def test_input_x_gradient_equals_captum_for_every_target(mlp: Any, cnn: Any) -> None:
    for net, model, X in (mlp, cnn):
        ours = xaudit.explain(model, X, method="gradient.input_x_gradient", target="all",
                              max_batch=2)
        attr = captum_attr.InputXGradient(net)
        for k in range(ours.values.shape[-1]):
            close(ours.values[..., k], attr.attribute(torch.tensor(X), target=k))


# -------------------------------------------------------------------- integrated gradients


@pytest.mark.parametrize("method", ["riemann_left", "riemann_right", "riemann_middle",
                                    "riemann_trapezoid", "gausslegendre"])
def test_integrated_gradients_equal_captum(mlp: Any, method: str) -> None:
    net, model, X = mlp
    n_steps = 25
    ours = xaudit.explain(model, X, method="gradient.integrated", path_method=method,
                          n_steps=n_steps)
    theirs = captum_attr.IntegratedGradients(net).attribute(
        torch.tensor(X), target=predicted(net, X), method=method, n_steps=n_steps)
    if method == "riemann_trapezoid":  # Captum's weights sum to (n-1)/n (see path_rule)
        theirs = theirs * n_steps / (n_steps - 1)
    close(ours.values[..., 0], theirs)
    # IG picks "predicted" in its own pass over x: the same outputs as the model's arg-max
    np.testing.assert_array_equal(ours.target_indices[:, 0], predicted(net, X).numpy())
    outputs = model.predict(X)[np.arange(len(X)), ours.target_indices[:, 0]]
    delta = ours.values[..., 0].sum(1) - (outputs - ours.base_values[:, 0])
    np.testing.assert_allclose(ours.extras["convergence_delta"][:, 0], delta, atol=1e-5)


def test_integrated_gradients_on_the_cnn_with_split_paths(cnn: Any) -> None:
    net, model, X = cnn
    ours = xaudit.explain(model, X, method="gradient.integrated", n_steps=16,
                          path_method="riemann_middle", max_batch=5)
    theirs = captum_attr.IntegratedGradients(net).attribute(
        torch.tensor(X), target=predicted(net, X), method="riemann_middle", n_steps=16,
        internal_batch_size=7)
    close(ours.values[..., 0], theirs)


def test_baselines_mean_given_uniform_blur(mlp: Any, cnn: Any) -> None:
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    net, model, X = mlp
    background = np.random.default_rng(5).normal(size=(30, 10)).astype(np.float32)
    ig = captum_attr.IntegratedGradients(net)
    target = predicted(net, X)
    ours = xaudit.explain(model, X, method="gradient.integrated", baseline="mean",
                          background=background, n_steps=20)
    mean = torch.tensor(background.mean(0, keepdims=True))
    close(ours.values[..., 0], ig.attribute(torch.tensor(X), mean, target=target, n_steps=20))
    given = np.linspace(-1, 1, 10)
    ours = xaudit.explain(model, X, method="gradient.integrated", baseline="given",
                          baseline_values=given, n_steps=20)
    close(ours.values[..., 0], ig.attribute(torch.tensor(X), torch.tensor(
        given, dtype=torch.float32)[None], target=target, n_steps=20))
    ours = xaudit.explain(model, X, method="gradient.integrated", baseline="uniform",
                          background=background, n_steps=20, seed=3)
    drawn = ours.extras["baseline"]
    assert drawn.shape == X.shape
    assert np.all(drawn >= background.min(0) - 1e-6)
    assert np.all(drawn <= background.max(0) + 1e-6)
    close(ours.values[..., 0], ig.attribute(torch.tensor(X), torch.tensor(
        drawn, dtype=torch.float32), target=target, n_steps=20))
    again = xaudit.explain(model, X, method="gradient.integrated", baseline="uniform",
                           background=background, n_steps=20, seed=3)
    np.testing.assert_array_equal(again.values, ours.values)
    net, model, X = cnn
    ours = xaudit.explain(model, X, method="gradient.integrated", baseline="blur",
                          blur_sigma=1.5, n_steps=8)
    blurred = scipy_ndimage.gaussian_filter(X.astype(np.float64), sigma=(0, 0, 1.5, 1.5),
                                            mode="mirror", truncate=3.0)
    np.testing.assert_allclose(ours.extras["baseline"], blurred, atol=1e-5)
    close(ours.values[..., 0], captum_attr.IntegratedGradients(net).attribute(
        torch.tensor(X), torch.tensor(ours.extras["baseline"], dtype=torch.float32),
        target=predicted(net, X), n_steps=8))
    with pytest.raises(InputError, match=r"blur.*images"):
        xaudit.explain(mlp[1], mlp[2], method="gradient.integrated", baseline="blur")


def test_completeness_with_64_gauss_legendre_steps() -> None:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 16), nn.Softplus(),
                        nn.Linear(16, 3)).eval()
    model = xaudit.adapt(net, device="cpu")
    X = np.random.default_rng(2).normal(size=(20, 6)) * 2
    ours = xaudit.explain(model, X, method="gradient.integrated", n_steps=64, target="all")
    change = np.abs(model.predict(X) - ours.base_values)
    total = ours.values.sum(axis=1) + ours.base_values
    assert np.all(np.abs(total - model.predict(X)) < 1e-3 * change)
    assert np.all(np.abs(ours.extras["convergence_delta"]) < 1e-3 * change)
    result = xaudit.check("completeness", model, ours, relative=True)
    assert result.value < 1e-3


def test_max_batch_gives_the_same_values(mlp: Any) -> None:
    _, model, X = mlp
    background = np.random.default_rng(4).normal(size=(16, 10))
    for method, params in (("gradient.integrated", {"n_steps": 30}),
                           ("gradient.saliency", {}),
                           ("gradient.smoothgrad", {"n_samples": 6, "variant": "vargrad"}),
                           ("shap.gradient", {"n_samples": 9, "stdev": 0.1})):
        whole = xaudit.explain(model, X, method=method, background=background, seed=1,
                               max_batch=4096, **params)
        split = xaudit.explain(model, X, method=method, background=background, seed=1,
                               max_batch=4, **params)
        np.testing.assert_allclose(split.values, whole.values, rtol=1e-6, atol=1e-7)
        if whole.std_errors is not None:
            np.testing.assert_allclose(split.std_errors, whole.std_errors, rtol=1e-5,
                                       atol=1e-7)


def test_path_points_per_pass_never_exceed_max_batch(cnn: Any) -> None:
    """200 steps in passes of at most 24 points: memory is bounded by max_batch, not n_steps."""
    net, model, X = cnn
    seen: list[int] = []
    handle = net.conv1.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[0]))
    try:
        bounded = xaudit.explain(model, X[:1], method="gradient.integrated", n_steps=200,
                                 max_batch=24)
    finally:
        handle.remove()
    assert max(seen) <= 24
    theirs = captum_attr.IntegratedGradients(net).attribute(
        torch.tensor(X[:1]), target=predicted(net, X[:1]), n_steps=200, internal_batch_size=200)
    close(bounded.values[..., 0], theirs)


# -------------------------------------------------------------------- stochastic methods


def agree_in_expectation(ours: Any, theirs: Any, z: float = 5.0) -> None:
    """Both sides are means of equally many draws: their difference has about sqrt(2) times
    our standard error."""
    theirs = theirs.detach().numpy()
    bound = z * np.sqrt(2) * ours.std_errors[..., 0] + 1e-4 * np.abs(theirs).max()
    assert np.all(np.abs(ours.values[..., 0] - theirs) <= bound)


@pytest.mark.parametrize("variant", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_matches_captum_noise_tunnel_in_expectation(mlp: Any, variant: str) -> None:
    net, model, X = mlp
    X = X[:4]
    samples = 2000
    ours = xaudit.explain(model, X, method="gradient.smoothgrad", variant=variant,
                          n_samples=samples, stdev=0.5, seed=0)
    torch.manual_seed(0)
    theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(net)).attribute(
        torch.tensor(X), nt_type=variant, nt_samples=samples, nt_samples_batch_size=2000,
        stdevs=0.5, target=predicted(net, X), abs=False)
    agree_in_expectation(ours, theirs)


def test_gradient_shap_matches_captum_in_expectation(mlp: Any) -> None:
    net, model, X = mlp
    X = X[:4]
    background = np.random.default_rng(6).normal(size=(40, 10)).astype(np.float32)
    samples = 3000
    ours = xaudit.explain(model, X, method="shap.gradient", background=background,
                          n_samples=samples, stdev=0.1, seed=0)
    torch.manual_seed(0)
    theirs = captum_attr.GradientShap(net).attribute(
        torch.tensor(X), torch.tensor(background), n_samples=samples, stdevs=0.1,
        target=predicted(net, X))
    agree_in_expectation(ours, theirs)
    expected = model.predict(background).mean(0)[ours.target_indices[:, 0]]
    np.testing.assert_allclose(ours.base_values[:, 0], expected, rtol=1e-6)


def test_gradient_shap_standard_errors_are_calibrated(mlp: Any) -> None:
    """The reported standard error matches the spread of the estimate over seeds."""
    _, model, X = mlp
    background = np.random.default_rng(7).normal(size=(40, 10))
    runs = [xaudit.explain(model, X[:3], method="shap.gradient", background=background,
                           n_samples=40, seed=s) for s in range(30)]
    spread = np.stack([r.values for r in runs]).std(axis=0, ddof=1)
    reported = np.mean([r.std_errors for r in runs], axis=0)
    ratio = spread.mean() / reported.mean()
    assert 0.7 < ratio < 1.3


def test_gradient_shap_is_exact_for_a_linear_model() -> None:
    """For f(x) = w.x + c every draw gives (x - b) w; its mean over the background rows is the
    interventional SHAP value (x - E b) w (Lundberg and Lee 2017)."""
    torch.manual_seed(3)
    net = nn.Linear(5, 2).eval()
    model = xaudit.adapt(net, device="cpu")
    X = np.random.default_rng(8).normal(size=(6, 5))
    background = np.random.default_rng(9).normal(size=(4000, 5))
    ours = xaudit.explain(model, X, method="shap.gradient", background=background,
                          n_samples=4000, target=1)
    exact = (X - background.mean(0)) * net.weight[1].detach().numpy()
    np.testing.assert_allclose(ours.values[..., 0], exact,
                               atol=5 * float(ours.std_errors.max()) + 1e-5)


# -------------------------------------------------------------------- occlusion


def test_image_occlusion_equals_captum(cnn: Any) -> None:
    net, model, X = cnn
    X = X[:1]
    occ = captum_attr.Occlusion(net)
    target = predicted(net, X)
    for window, strides in (([3, 8, 8], [3, 4, 4]), (None, None)):
        params: dict[str, Any] = {} if window is None else {"window": window, "strides": strides}
        ours = xaudit.explain(model, X, method="occlusion", **params)
        theirs = occ.attribute(torch.tensor(X), sliding_window_shapes=tuple(window or (3, 4, 4)),
                               strides=tuple(strides or (3, 4, 4)), target=target,
                               perturbations_per_eval=64)
        close(ours.values[..., 0], theirs, atol=REL * output_scale(model, X))


def test_tabular_occlusion_equals_feature_ablation(mlp: Any) -> None:
    net, model, X = mlp
    ablation = captum_attr.FeatureAblation(net)
    target = predicted(net, X)
    ours = xaudit.explain(model, X, method="occlusion")
    atol = REL * output_scale(model, X)
    close(ours.values[..., 0], ablation.attribute(torch.tensor(X), target=target), atol=atol)
    groups = [[0, 3, 4], [7, 9]]
    mask = torch.tensor([[0, 2, 3, 0, 0, 4, 5, 1, 6, 1]])
    background = np.random.default_rng(10).normal(size=(20, 10)).astype(np.float32)
    ours = xaudit.explain(model, X, method="occlusion", groups=groups, baseline="mean",
                          background=background)
    close(ours.values[..., 0], ablation.attribute(
        torch.tensor(X), baselines=torch.tensor(background.mean(0, keepdims=True)),
        feature_mask=mask, target=target), atol=atol)


def test_text_occlusion_replaces_tokens() -> None:
    """Token ids (a text model): occlusion replaces one token at a time by the pad id."""

    class Bag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(20, 4)
            self.out = nn.Linear(4, 2)

        def forward(self, ids: Any) -> Any:
            return self.out(torch.tanh(self.embed(ids)).mean(1))

    torch.manual_seed(4)
    net = Bag().eval()
    model = xaudit.adapt(net, device="cpu", feature_shape=[7], input_dtypes=["int64"])
    ids = np.random.default_rng(11).integers(1, 20, size=(5, 7))
    ours = xaudit.explain(model, ids, method="occlusion", baseline="value", baseline_value=0)
    theirs = captum_attr.FeatureAblation(net).attribute(
        torch.tensor(ids), baselines=0, target=predicted(net, ids))
    close(ours.values[..., 0], theirs, atol=REL * output_scale(model, ids))
    with pytest.raises(CapabilityError, match="text"):
        xaudit.explain(model, ids, method="gradient.saliency")


# -------------------------------------------------------------------- multi-input, refusals


def test_two_input_model_gets_one_attribution_per_input() -> None:
    torch.manual_seed(5)
    net = TwoInput().eval()
    model = xaudit.adapt(net, device="cpu", feature_shape=[[5], [1, 6, 6]])
    rng = np.random.default_rng(12)
    tab, img = rng.normal(size=(4, 5)).astype(np.float32), rng.random((4, 1, 6, 6)).astype(
        np.float32)
    inputs = (torch.tensor(tab), torch.tensor(img))
    with torch.no_grad():
        target = net(*inputs).argmax(1)
    for method, params, oracle in (
            ("gradient.saliency", {"absolute": False},
             lambda: captum_attr.Saliency(net).attribute(inputs, target=target, abs=False)),
            ("gradient.integrated", {"n_steps": 20},
             lambda: captum_attr.IntegratedGradients(net).attribute(inputs, target=target,
                                                                    n_steps=20)),
            ("gradient.input_x_gradient", {},
             lambda: captum_attr.InputXGradient(net).attribute(inputs, target=target))):
        ours = xaudit.explain(model, (tab, img), method=method, **params).per_input()
        assert list(ours) == ["tabular", "image"]
        for mine, theirs in zip(ours.values(), oracle(), strict=True):
            close(mine[..., 0], theirs)


def test_inputs_of_token_ids_are_refused_by_name() -> None:
    class IdsAndFeatures(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 3)
            self.out = nn.Linear(3 + 2, 2)

        def forward(self, ids: Any, extra: Any) -> Any:
            return self.out(torch.cat([self.embed(ids).mean(1), extra], 1))

    model = xaudit.adapt(IdsAndFeatures().eval(), device="cpu", feature_shape=[[4], [2]],
                         input_dtypes=["int64", "float"], modality="tabular")
    rows = (np.array([[1, 2, 3, 4]]), np.array([[0.5, -0.5]]))
    with pytest.raises(CapabilityError, match=r"'ids'.*integer ids"):
        xaudit.explain(model, rows, method="gradient.integrated")


def test_models_without_gradients_are_refused() -> None:
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(13)
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 2, 30)
    forest = sklearn_linear.LogisticRegression().fit(X, y)
    for method in ("gradient.saliency", "gradient.integrated", "gradient.smoothgrad",
                   "shap.gradient"):
        with pytest.raises(CapabilityError, match=f"{method}.*gradients"):
            xaudit.explain(forest, X[:2], method=method, background=X)
    occlusion = xaudit.explain(forest, X[:2], method="occlusion")  # needs predict only
    assert occlusion.values.shape == (2, 4, 1)


# -------------------------------------------------------------------- Keras -> ONNX


@pytest.fixture(scope="module")
def keras_digits_cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, np.ndarray]:
    """A Keras 3 CNN (torch backend) trained briefly on the 8x8 digits, exported to ONNX."""
    pytest.importorskip("onnxruntime")
    datasets = pytest.importorskip("sklearn.datasets")
    previous = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = "torch"
    try:
        keras = pytest.importorskip("keras")
    finally:
        if previous is None:
            os.environ.pop("KERAS_BACKEND", None)
        else:
            os.environ["KERAS_BACKEND"] = previous
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was already imported with the {keras.backend.backend()} backend")
    data = datasets.load_digits()
    images = (data.images / 16.0).astype(np.float32)[..., None]
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="digit")
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(16, 3, activation="tanh")(h)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    path = tmp_path_factory.mktemp("keras") / "digits_cnn.onnx"
    with warnings.catch_warnings():  # Keras' tracing and numpy 2 notices, not ours
        warnings.simplefilter("ignore")
        model.fit(images[:1200], data.target[:1200], epochs=2, batch_size=64, verbose=0)
        model(images[:2])
        model.export(str(path), format="onnx", verbose=False)
    return model, path, images[1500:1510]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_keras_onnx_integrated_gradients_equal_keras_torch_backend(
        keras_digits_cnn: tuple[Any, Path, np.ndarray]) -> None:
    """Issue 3's acceptance point: IG through the ONNX adapter equals IG on the Keras model."""
    keras_model, path, images = keras_digits_cnn
    model = xaudit.adapt(path)
    assert model.adapter == "onnx"
    assert "gradients" in model.capabilities
    ours = xaudit.explain(model, images, method="gradient.integrated", n_steps=32)

    def forward(x: Any) -> Any:
        return keras_model(x, training=False)

    x = torch.tensor(images)
    with torch.no_grad():
        target = forward(x).argmax(1)
    np.testing.assert_array_equal(ours.target_indices[:, 0], target.numpy())
    theirs = captum_attr.IntegratedGradients(forward).attribute(
        x, target=target, n_steps=32, method="gausslegendre")
    close(ours.values[..., 0], theirs, rel=1e-4)
    assert np.abs(ours.extras["convergence_delta"]).max() < 1e-2
    saliency = xaudit.explain(model, images, method="gradient.saliency", absolute=False)
    close(saliency.values[..., 0], captum_attr.Saliency(forward).attribute(
        x.clone().requires_grad_(), target=target, abs=False), rel=1e-4)
    # NHWC rows (Keras' layout, read from the graph): the blur runs over height and width only
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    blurred = xaudit.explain(model, images[:3], method="gradient.integrated", baseline="blur",
                             blur_sigma=1.0, n_steps=16)
    reference = scipy_ndimage.gaussian_filter(images[:3].astype(np.float64), (0, 1.0, 1.0, 0),
                                              mode="mirror", truncate=3.0)
    np.testing.assert_allclose(blurred.extras["baseline"], reference, atol=1e-5)
    close(blurred.values[..., 0], captum_attr.IntegratedGradients(forward).attribute(
        x[:3], torch.tensor(reference, dtype=torch.float32), target=target[:3], n_steps=16),
        rel=1e-4)


# -------------------------------------------------------------------- from a suite

SUITE_MODELS = '''
import torch
from torch import nn


class Standardised(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.net = nn.Sequential(nn.Linear(13, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def build(data):
    torch.manual_seed(0)
    return Standardised(data.X_train.mean(0), data.X_train.std(0)).eval()
'''

SUITE = """
name: gradient-methods
seed: 3
model: {factory: "netmodels:build"}
data: {source: "sklearn:wine", explain: {n: 6}, background: {n: 20}}
explainers:
  - {id: ig, method: gradient.integrated, params: {n_steps: 64, baseline: mean}}
  - {id: saliency, method: gradient.saliency, params: {absolute: false}}
  - {id: ixg, method: gradient.input_x_gradient}
  - {id: smooth, method: gradient.smoothgrad, params: {n_samples: 8, variant: vargrad}}
  - {id: expected, method: shap.gradient, params: {n_samples: 16}}
  - {id: occlusion, method: occlusion, params: {baseline: mean}}
checks:
  - check: completeness
    explainer: ig
    params: {relative: true}
    gate: {threshold: 1.0e-3}
"""


def test_every_method_runs_from_a_suite(tmp_path: Path) -> None:
    (tmp_path / "netmodels.py").write_text(SUITE_MODELS)
    (tmp_path / "suite.yaml").write_text(SUITE)
    result = xaudit.run_suite(tmp_path / "suite.yaml")
    assert not result.explainer_errors, result.explainer_errors
    assert sorted(result.explanations) == ["expected", "ig", "ixg", "occlusion", "saliency",
                                           "smooth"]
    assert result.explanations["smooth"].std_errors is not None
    assert result.explanations["ig"].extras["convergence_delta"].shape == (6, 1)
    assert [c.status for c in result.checks] == ["pass"]
    assert int(result.exit_code()) == 0


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("absolute", [False, True])
def test_to_numpy_widens_strided_tensors_to_float64(dtype: str, absolute: bool) -> None:
    from xaudit.plugins._support.autograd import to_numpy

    grads = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0)).to(
        getattr(torch, dtype))
    strided = grads.movedim(0, -1)  # (4, 3, 5, 2), the slots' axis last: not contiguous
    assert not strided.is_contiguous()
    expected = strided.double().numpy()
    got = to_numpy(strided, absolute)
    assert got.dtype == np.float64
    assert got.shape == (4, 3, 5, 2)
    np.testing.assert_array_equal(got, np.abs(expected) if absolute else expected)


class FlatteningCNN(SimpleCNN):
    """The seeds' CNN with ``torch.flatten`` before its dense head (so channels-last inputs
    run through it), max-pooling as before, or average-pooling with ``pool="avg"``."""

    def __init__(self, pool: str = "max") -> None:
        super().__init__()
        if pool == "avg":
            self.pool = torch.nn.AvgPool2d(2, 2)

    def head(self, x: Any) -> Any:
        x = torch.flatten(self.pool(torch.relu(x)), 1)
        return self.fc2(torch.relu(self.fc1(x)))


def test_integrated_gradients_of_a_max_pooling_cnn_equal_captum_to_rounding() -> None:
    """Channels-last kernels round differently, and a max-pool near-tie then routes a window's
    gradient elsewhere (3e-3 to 1.6e-2 of the largest value measured on these rows): such a
    model is explained in its own layout."""
    from xaudit.plugins._support.autograd import _LAYOUTS

    torch.manual_seed(0)
    net = FlatteningCNN().eval()
    X = np.random.default_rng(0).random((6, 3, 32, 32)).astype(np.float32)
    model = xaudit.adapt(net, device="cpu", feature_shape=[3, 32, 32])
    _LAYOUTS.clear()
    ours = xaudit.explain(model, X, method="gradient.integrated", target=0, n_steps=16,
                          path_method="riemann_middle")
    theirs = captum_attr.IntegratedGradients(net).attribute(
        torch.tensor(X), target=0, method="riemann_middle", n_steps=16)
    close(ours.values[..., 0], theirs)
    assert list(_LAYOUTS.values()) == [False]


def test_a_cnn_without_max_selection_keeps_the_channels_last_layout() -> None:
    from xaudit.plugins._support.autograd import _LAYOUTS, selects

    torch.manual_seed(0)
    net = FlatteningCNN(pool="avg").eval()
    X = np.random.default_rng(0).random((6, 3, 32, 32)).astype(np.float32)
    model = xaudit.adapt(net, device="cpu", feature_shape=[3, 32, 32])
    _LAYOUTS.clear()
    ours = xaudit.explain(model, X, method="gradient.integrated", target=0, n_steps=16,
                          path_method="riemann_middle")
    assert list(_LAYOUTS.values()) == [True]
    theirs = captum_attr.IntegratedGradients(net).attribute(
        torch.tensor(X), target=0, method="riemann_middle", n_steps=16)
    close(ours.values[..., 0], theirs)
    assert [selects(name) for name in ("max_pool2d", "adaptive_max_pool2d", "amax", "topk",
                                       "amax.default", "max.dim", "softmax", "relu",
                                       "avg_pool2d")] == [True] * 6 + [False] * 3


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.* is deprecated:DeprecationWarning")
def test_a_torchscript_cnn_keeps_its_layout_as_its_calls_cannot_be_seen() -> None:
    from xaudit.plugins._support.autograd import _LAYOUTS

    torch.manual_seed(0)
    eager = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).eval()
    X = np.random.default_rng(0).random((5, 3, 8, 8)).astype(np.float32)
    layouts = []
    for net in (eager, torch.jit.script(eager)):
        _LAYOUTS.clear()
        model = xaudit.adapt(net, device="cpu", feature_shape=[3, 8, 8])
        ours = xaudit.explain(model, X, method="gradient.saliency", target=1, absolute=False)
        layouts += list(_LAYOUTS.values())
        close(ours.values[..., 0],
              captum_attr.Saliency(eager).attribute(torch.tensor(X), target=1, abs=False))
    assert layouts == [True, False]
