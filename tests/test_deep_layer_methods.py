"""DeepLIFT, DeepSHAP, Grad-CAM(++) and the layer methods against Captum 0.9 and closed forms.

Oracles: Captum's DeepLift, DeepLiftShap, LayerGradCam, LayerConductance, NeuronConductance,
LayerIntegratedGradients and LayerActivation on the same float64 modules and settings; closed
forms for the rules Captum lacks (GELU) and for Grad-CAM++. Captum refuses the seeds' CNN as
written (its max pool module runs three times, its ReLUs are functional), so its numbers come
from a twin with one module per use and the same weights.
"""

from __future__ import annotations

import warnings
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

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
REL = 1e-5


def assert_rel(actual: Any, expected: Any, tol: float = REL) -> None:
    """``max |a - e| <= tol * max |e|``."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = float(np.abs(expected).max())
    assert scale > 0
    err = float(np.abs(actual - expected).max())
    assert err <= tol * scale, f"relative error {err / scale:.3g} > {tol}"


def t(a: np.ndarray) -> Any:
    return torch.tensor(a, dtype=torch.float64)


def npy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy()


# -------------------------------------------------------------------- models


class ModularCNN(nn.Module):
    """SimpleCNN's twin for Captum: the same layers, one ReLU and pool module per use."""

    def __init__(self, src: SimpleCNN) -> None:
        super().__init__()
        self.conv1, self.conv2, self.conv3 = src.conv1, src.conv2, src.conv3
        self.fc1, self.fc2 = src.fc1, src.fc2
        self.relus = nn.ModuleList(nn.ReLU() for _ in range(4))
        self.pools = nn.ModuleList(nn.MaxPool2d(2, 2) for _ in range(3))

    def forward(self, x: Any) -> Any:
        for i, conv in enumerate((self.conv1, self.conv2, self.conv3)):
            x = self.pools[i](self.relus[i](conv(x)))
        return self.fc2(self.relus[3](self.fc1(x.view(-1, 128 * 4 * 4))))


class Square(nn.Module):
    def forward(self, x: Any) -> Any:
        return x * x


def double(module: Any, seed: int = 0) -> Any:
    torch.manual_seed(seed)
    return module.double().eval()


@pytest.fixture(scope="module")
def mlp() -> tuple[Any, Any]:
    torch.manual_seed(0)
    module = double(SimpleNN())
    return module, xaudit.adapt(module, dtype="float64")


@pytest.fixture(scope="module")
def cnn() -> tuple[Any, Any, Any]:
    torch.manual_seed(1)
    module = SimpleCNN().double().eval()
    return module, ModularCNN(module).eval(), xaudit.adapt(module, dtype="float64",
                                                            feature_shape=[3, 32, 32])


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(6, 10))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(3, 3, 32, 32))


# -------------------------------------------------------------------- DeepLIFT and DeepSHAP


def test_deeplift_mlp_matches_captum_for_every_output(mlp, rows):
    module, model = mlp
    e = xaudit.explain(model, rows, "deeplift", target="all")
    for j in range(2):
        ref = captum_attr.DeepLift(module).attribute(t(rows), target=j)
        assert_rel(e.values[..., j], npy(ref))
    zero = model.predict(np.zeros((1, 10)))
    assert np.allclose(e.base_values, np.repeat(zero, len(rows), axis=0))
    assert np.allclose(e.values.sum(1) + e.base_values, model.predict(rows), atol=1e-10)
    assert e.handoff.inexact_ops == ()


def test_deeplift_mean_baseline_matches_captum(mlp, rows):
    module, model = mlp
    bg = np.random.default_rng(5).normal(size=(20, 10))
    e = xaudit.explain(model, rows, "deeplift", background=bg, baseline="mean", target=1)
    ref = captum_attr.DeepLift(module).attribute(t(rows), baselines=t(bg.mean(0, keepdims=True)),
                                                 target=1)
    assert_rel(e.values[..., 0], npy(ref))


def test_deeplift_given_baselines_match_captum(mlp, rows):
    module, model = mlp
    given = np.random.default_rng(15).normal(size=rows.shape)
    e = xaudit.explain(model, rows, "deeplift", baseline="given",
                       baseline_values=given.tolist(), target=0)
    ref = captum_attr.DeepLift(module).attribute(t(rows), baselines=t(given), target=0)
    assert_rel(e.values[..., 0], npy(ref))
    assert np.allclose(e.base_values[:, 0], model.predict(given)[:, 0])


def test_deepshap_mlp_matches_captum(mlp, rows):
    module, model = mlp
    bg = np.random.default_rng(2).normal(size=(7, 10))
    e = xaudit.explain(model, rows, "shap.deep", background=bg, target="predicted",
                       max_batch=10)  # blocks of one row
    predicted = model.predict(rows).argmax(1)
    ref = captum_attr.DeepLiftShap(module).attribute(t(rows), baselines=t(bg),
                                                     target=torch.tensor(predicted))
    assert_rel(e.values[..., 0], npy(ref))
    expected = model.predict(bg)[:, predicted].T.mean(1)
    assert np.allclose(e.base_values[:, 0], model.predict(bg).mean(0)[predicted])
    assert np.allclose(e.values[..., 0].sum(1) + e.base_values[:, 0],
                       model.predict(rows)[np.arange(len(rows)), predicted], atol=1e-10)
    assert expected.shape == (len(rows),)


def test_deeplift_seed_cnn_gradient_maxpool_matches_captum(cnn, images):
    """Captum applies no max-pool rule when the pool follows a ReLU module (both hooks sit on
    one tensor), i.e. the pool keeps its gradient: our ``maxpool='gradient'``."""
    _module, twin, model = cnn
    e = xaudit.explain(model, images, "deeplift", target=[3, 7], maxpool="gradient")
    for slot, target in enumerate((3, 7)):
        ref = captum_attr.DeepLift(twin).attribute(t(images), target=target)
        assert_rel(e.values[..., slot], npy(ref))


def test_deeplift_seed_cnn_crossmax_sums_exactly(cnn, images):
    _, _, model = cnn
    e = xaudit.explain(model, images, "deeplift", target=5)
    total = e.values.sum(axis=(1, 2, 3))[:, 0] + e.base_values[:, 0]
    assert np.allclose(total, model.predict(images)[:, 5], rtol=0, atol=1e-10)


def test_deeplift_crossmax_matches_captum_maxpool_rule():
    """Where Captum does apply its max-pool rule (pool not next to an activation module)."""
    module = double(nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 8, 1),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8 * 4 * 4, 4)), seed=3)
    with torch.no_grad():
        module[1].running_mean.uniform_(-1, 1)
        module[1].running_var.uniform_(0.5, 2)
    X = np.random.default_rng(3).normal(size=(4, 3, 8, 8))
    model = xaudit.adapt(module, dtype="float64", feature_shape=[3, 8, 8])
    e = xaudit.explain(model, X, "deeplift", target=2)
    assert_rel(e.values[..., 0], npy(captum_attr.DeepLift(module).attribute(t(X), target=2)))


def test_deepshap_seed_cnn_matches_captum(cnn, images):
    _, twin, model = cnn
    bg = np.random.default_rng(4).normal(size=(3, 3, 32, 32))
    e = xaudit.explain(model, images[:2], "shap.deep", background=bg, target=4,
                       maxpool="gradient")
    ref = captum_attr.DeepLiftShap(twin).attribute(t(images[:2]), baselines=t(bg), target=4)
    assert_rel(e.values[..., 0], npy(ref))


def test_deeplift_activation_modules_match_captum():
    module = double(nn.Sequential(
        nn.Linear(5, 12), nn.BatchNorm1d(12), nn.LeakyReLU(0.1), nn.Linear(12, 12), nn.Sigmoid(),
        nn.Linear(12, 12), nn.Tanh(), nn.Dropout(0.5), nn.Linear(12, 12), nn.ELU(),
        nn.Linear(12, 12), nn.Softplus(), nn.Linear(12, 8), nn.LayerNorm(8), nn.ReLU(),
        nn.Linear(8, 3)), seed=4)
    X = np.random.default_rng(6).normal(size=(5, 5))
    model = xaudit.adapt(module, dtype="float64")
    e = xaudit.explain(model, X, "deeplift", target=0)
    assert_rel(e.values[..., 0], npy(captum_attr.DeepLift(module).attribute(t(X), target=0)))
    assert e.handoff.inexact_ops == ("layer_norm",)


def test_deeplift_softmax_matches_captum_row_by_row():
    """Captum centres the softmax multipliers over the whole batch; ours per row: equal for
    one row at a time."""
    module = double(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1)))
    X = np.random.default_rng(7).normal(size=(3, 4))
    model = xaudit.adapt(module, dtype="float64")
    e = xaudit.explain(model, X, "deeplift", target=1)
    for i in range(3):
        ref = captum_attr.DeepLift(module).attribute(t(X[i:i + 1]), target=1)
        assert_rel(e.values[i:i + 1, :, 0], npy(ref))
    assert e.handoff.inexact_ops == ("softmax",)


def test_deeplift_gelu_closed_form():
    """Captum has no GELU rule; the Rescale rule on one hidden layer, written out by hand."""
    module = double(nn.Sequential(nn.Linear(6, 9), nn.GELU(), nn.Linear(9, 2)), seed=5)
    X = np.random.default_rng(8).normal(size=(4, 6))
    model = xaudit.adapt(module, dtype="float64")
    e = xaudit.explain(model, X, "deeplift", target=1)
    W1, b1 = npy(module[0].weight), npy(module[0].bias)
    w2 = npy(module[2].weight)[1]

    def gelu(z: np.ndarray) -> np.ndarray:
        return npy(F.gelu(t(z)))

    z, z0 = X @ W1.T + b1, b1[None, :]
    multiplier = (gelu(z) - gelu(z0)) / (z - z0)
    expected = X * ((multiplier * w2) @ W1)
    assert_rel(e.values[..., 0], expected)


@pytest.mark.parametrize("method", ["deeplift", "shap.deep"])
def test_deeplift_refuses_a_custom_product_naming_the_module(method):
    module = double(nn.Sequential(nn.Linear(3, 4), Square(), nn.Linear(4, 1)))
    model = xaudit.adapt(module, dtype="float64")
    X = np.ones((2, 3))
    with pytest.raises(CapabilityError, match=r"mul.*layer '1' \(Square\)"):
        xaudit.explain(model, X, method, background=X, target=0)


def test_deeplift_refuses_multihead_attention_by_name():
    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
            self.out = nn.Linear(4, 2)

        def forward(self, x: Any) -> Any:
            h = self.attn(x, x, x)[0]
            return self.out(h.mean(1))

    model = xaudit.adapt(double(Attn()), dtype="float64", feature_shape=[3, 4], modality="other")
    with pytest.raises(CapabilityError, match="'attn' of type MultiheadAttention"):
        xaudit.explain(model, np.ones((1, 3, 4)), "deeplift", target=0)


def test_deeplift_refuses_an_unlisted_function():
    class Exp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: Any) -> Any:
            return self.fc(torch.exp(x))

    model = xaudit.adapt(double(Exp()), dtype="float64")
    with pytest.raises(CapabilityError, match=r"'exp'.*the root module \(.*Exp\)"):
        xaudit.explain(model, np.ones((1, 3)), "deeplift", target=0)


class TwoInput(nn.Module):
    """A dense branch (4 features) and a conv branch (1x5x5), functional activations."""

    def __init__(self) -> None:
        super().__init__()
        self.dense, self.conv = nn.Linear(4, 8), nn.Conv2d(1, 2, 3)
        self.head = nn.Linear(8 + 2 * 3 * 3, 3)

    def forward(self, tabular: Any, image: Any) -> Any:
        return self.head(torch.cat([torch.tanh(self.dense(tabular)),
                                    F.relu(self.conv(image)).flatten(1)], 1))


class TwoInputTwin(nn.Module):
    """TwoInput with activation modules, for Captum."""

    def __init__(self, net: TwoInput) -> None:
        super().__init__()
        self.net, self.tanh, self.relu = net, nn.Tanh(), nn.ReLU()

    def forward(self, tabular: Any, image: Any) -> Any:
        return self.net.head(torch.cat([self.tanh(self.net.dense(tabular)),
                                        self.relu(self.net.conv(image)).flatten(1)], 1))


def test_deeplift_and_deepshap_give_one_array_per_input():
    net = double(TwoInput(), seed=6)
    rng = np.random.default_rng(14)
    X = (rng.normal(size=(3, 4)), rng.normal(size=(3, 1, 5, 5)))
    bg = (rng.normal(size=(4, 4)), rng.normal(size=(4, 1, 5, 5)))
    model = xaudit.adapt(net, feature_shape=[[4], [1, 5, 5]], dtype="float64")
    twin = TwoInputTwin(net)
    inputs = tuple(t(a) for a in X)
    plain = xaudit.explain(model, X, "deeplift", target=2).per_input()
    refs = captum_attr.DeepLift(twin).attribute(inputs, target=2)
    shap = xaudit.explain(model, X, "shap.deep", background=bg, target=2).per_input()
    shap_refs = captum_attr.DeepLiftShap(twin).attribute(
        inputs, baselines=tuple(t(b) for b in bg), target=2)
    for i, name in enumerate(("tabular", "image")):
        assert_rel(plain[name][..., 0], npy(refs[i]))
        assert_rel(shap[name][..., 0], npy(shap_refs[i]))


# -------------------------------------------------------------------- Grad-CAM


@pytest.mark.parametrize("relu", [False, True])
def test_gradcam_matches_captum_layer_gradcam(cnn, images, relu):
    module, _, model = cnn
    e = xaudit.explain(model, images, "gradcam", target=[2, 5], relu=relu)
    assert e.metadata["layer"] == "conv3"  # the last Conv2d run
    assert e.values.shape == (3, 3, 32, 32, 2)
    for slot, target in enumerate((2, 5)):
        cam = captum_attr.LayerGradCam(module, module.conv3).attribute(
            t(images), target=target, relu_attributions=relu)
        ref = npy(captum_attr.LayerAttribution.interpolate(cam, (32, 32), "bilinear"))
        for channel in range(3):
            assert_rel(e.values[:, channel, ..., slot], ref[:, 0])


def test_gradcam_picks_each_rows_predicted_output_in_its_own_forward(cnn, images):
    """Grad-CAM finds the predicted outputs itself (no extra forward by the host): the same
    indices as the arg-max of the model's predictions, the same maps as explicit targets."""
    module, _, model = cnn
    predicted = model.predict(images).argmax(axis=1)
    e = xaudit.explain(model, images, "gradcam", max_batch=2)  # two blocks of rows
    np.testing.assert_array_equal(e.target_indices[:, 0], predicted)
    assert e.output_names == ("predicted",)
    for row, target in enumerate(predicted):
        cam = captum_attr.LayerGradCam(module, module.conv3).attribute(
            t(images[row:row + 1]), target=int(target), relu_attributions=True)
        ref = npy(captum_attr.LayerAttribution.interpolate(cam, (32, 32), "bilinear"))
        assert_rel(e.values[row:row + 1, 0, ..., 0], ref[:, 0])


def test_gradcam_plusplus_closed_form(cnn, images):
    """Chattopadhay et al. 2018, eq. 19 with the exponential output: computed here with numpy
    loops from conv3's activations and the gradients of the class score."""
    module, _, model = cnn
    e = xaudit.explain(model, images, "gradcam.plusplus", layer="conv3", target=6)
    act = module.features(t(images)).detach().requires_grad_(True)
    grads = npy(torch.autograd.grad(module.head(act)[:, 6].sum(), act)[0])
    A = npy(act)
    expected = []
    for i in range(len(images)):
        cam = np.zeros(A.shape[2:])
        for c in range(A.shape[1]):
            g = grads[i, c]
            denom = 2 * g ** 2 + A[i, c].sum() * g ** 3
            alpha = np.divide(g ** 2, denom, out=np.zeros_like(g), where=denom != 0)
            cam += (alpha * np.maximum(g, 0)).sum() * A[i, c]
        expected.append(np.maximum(cam, 0))
    up = F.interpolate(t(np.array(expected))[:, None], size=(32, 32), mode="bilinear",
                       align_corners=False)
    assert_rel(e.values[:, 0, ..., 0], npy(up)[:, 0])


def test_gradcam_refuses_a_model_without_conv_layers(mlp, rows):
    _, model = mlp
    with pytest.raises(CapabilityError):
        xaudit.explain(model, rows, "gradcam", target=0)


# -------------------------------------------------------------------- layer and neuron methods


@pytest.mark.parametrize("layer", ["network.2", "network.3"])
def test_layer_conductance_matches_captum(mlp, rows, layer):
    module, model = mlp
    e = xaudit.explain(model, rows, "layer.conductance", layer=layer, target=1, n_steps=40)
    ref = captum_attr.LayerConductance(module, module.network.get_submodule(layer[8:])).attribute(
        t(rows), target=1, n_steps=40)
    assert_rel(e.values[..., 0], npy(ref))
    assert e.feature_names[0] == f"{layer}[0]"


def test_layer_conductance_cnn_matches_captum(cnn, images):
    module, _, model = cnn
    e = xaudit.explain(model, images[:2], "layer.conductance", layer="conv2", target=3,
                       n_steps=8, path_method="riemann_middle")
    ref = captum_attr.LayerConductance(module, module.conv2).attribute(
        t(images[:2]), target=3, n_steps=8, method="riemann_middle")
    assert_rel(e.values[..., 0], npy(ref))


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle", "riemann_left"])
def test_neuron_conductance_matches_captum(mlp, rows, method):
    module, model = mlp
    e = xaudit.explain(model, rows, "neuron.conductance", layer="network.2", neuron=[5],
                       target=0, n_steps=30, path_method=method)
    ref = captum_attr.NeuronConductance(module, module.network[2]).attribute(
        t(rows), neuron_selector=5, target=0, n_steps=30, method=method)
    assert_rel(e.values[..., 0], npy(ref))


def test_neuron_conductance_trapezoid_is_captums_rescaled(mlp, rows):
    """Captum's trapezoid weights sum to (n-1)/n; ours to one."""
    module, model = mlp
    n = 30
    e = xaudit.explain(model, rows, "neuron.conductance", layer="network.2", neuron=[5],
                       target=0, n_steps=n, path_method="riemann_trapezoid")
    ref = captum_attr.NeuronConductance(module, module.network[2]).attribute(
        t(rows), neuron_selector=5, target=0, n_steps=n, method="riemann_trapezoid")
    assert_rel(e.values[..., 0] * (n - 1) / n, npy(ref))


def test_neuron_conductance_cnn_unit_matches_captum(cnn, images):
    module, _, model = cnn
    with torch.no_grad():  # the strongest unit of image 0 passes its ReLU and max pool
        act = module.features(t(images[:1]))[0]
    unit = [int(i) for i in np.unravel_index(int(act.argmax()), tuple(act.shape))]
    e = xaudit.explain(model, images[:2], "neuron.conductance", layer="conv3", neuron=unit,
                       target=1, n_steps=8)
    ref = captum_attr.NeuronConductance(module, module.conv3).attribute(
        t(images[:2]), neuron_selector=tuple(unit), target=1, n_steps=8, method="gausslegendre")
    assert_rel(e.values[..., 0], npy(ref))


def test_neuron_conductance_refuses_a_bad_unit(mlp, rows):
    _, model = mlp
    with pytest.raises(InputError, match="not an index"):
        xaudit.explain(model, rows, "neuron.conductance", layer="network.2", neuron=[99],
                       target=0)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_left"])
def test_layer_integrated_matches_captum(mlp, rows, method):
    module, model = mlp
    e = xaudit.explain(model, rows, "layer.integrated", layer="network.1", target=[0, 1],
                       n_steps=25, path_method=method)
    for j in range(2):
        ref = captum_attr.LayerIntegratedGradients(module, module.network[1]).attribute(
            t(rows), target=j, n_steps=25, method=method)
        assert_rel(e.values[..., j], npy(ref))


def test_layer_integrated_cnn_matches_captum(cnn, images):
    module, _, model = cnn
    e = xaudit.explain(model, images[:2], "layer.integrated", layer="conv2", target=8,
                       n_steps=10)
    ref = captum_attr.LayerIntegratedGradients(module, module.conv2).attribute(
        t(images[:2]), target=8, n_steps=10)
    assert_rel(e.values[..., 0], npy(ref))


def test_layer_activations_match_captum(mlp, rows, cnn, images):
    module, model = mlp
    e = xaudit.explain(model, rows, "layer.activations", layer="network.3", target="all")
    ref = npy(captum_attr.LayerActivation(module, module.network[3]).attribute(t(rows)))
    assert_rel(e.values[..., 0], ref)
    assert_rel(e.values[..., 1], ref)
    cnn_module, _, cnn_model = cnn
    e = xaudit.explain(cnn_model, images, "layer.activations", layer="conv1", target=0)
    ref = npy(captum_attr.LayerActivation(cnn_module, cnn_module.conv1).attribute(t(images)))
    assert_rel(e.values[..., 0], ref)
    assert e.values.shape == (3, 32, 32, 32, 1)


def test_layer_methods_name_a_missing_layer(mlp, rows):
    _, model = mlp
    with pytest.raises(InputError, match="did you mean"):
        xaudit.explain(model, rows, "layer.conductance", layer="network.22", target=0)


def test_deep_and_layer_methods_refuse_models_without_torch_modules(rows):
    model = xaudit.adapt(lambda X: np.asarray(X)[:, :2], adapter="callable")
    for method in ("deeplift", "gradcam", "layer.integrated"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(CapabilityError):
                xaudit.explain(model, rows, method, target=0)


# -------------------------------------------------------------------- contract and suites


def _conformance_cases() -> list[Any]:
    from xaudit.plugins.deep.deeplift import DeepLift
    from xaudit.plugins.deep.deepshap import DeepShap
    from xaudit.plugins.deep.gradcam import GradCam, GradCamPlusPlus
    from xaudit.plugins.deep.layer import LayerActivations, LayerConductance, LayerIntegrated
    from xaudit.plugins.deep.neuron import NeuronConductance
    from xaudit.testing import explainer_checks

    torch.manual_seed(11)
    # layer "1" outputs (6,), like the rows, so layer values follow the input's schema
    mlp = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)).double().eval()
    X, bg = np.random.default_rng(9).normal(size=(4, 6)), np.random.default_rng(10).normal(
        size=(5, 6))
    small_cnn = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(3 * 4 * 4, 2)).double().eval()
    images = np.random.default_rng(12).normal(size=(3, 2, 8, 8))
    tabular = {"model": xaudit.adapt(mlp, dtype="float64"), "X": X, "background": bg}
    image = {"model": xaudit.adapt(small_cnn, dtype="float64", feature_shape=[2, 8, 8]),
             "X": images, "background": images}
    plans: list[tuple[type[Any], dict[str, Any], dict[str, Any]]] = [
        (DeepLift, tabular, {}), (DeepShap, tabular, {}), (DeepLift, image, {}),
        (GradCam, image, {}), (GradCamPlusPlus, image, {"layer": "0"}),
        (NeuronConductance, tabular, {"layer": "1", "neuron": [2], "n_steps": 8}),
        (LayerConductance, tabular, {"layer": "1", "n_steps": 8}),
        (LayerIntegrated, tabular, {"layer": "1", "n_steps": 8}),
        (LayerActivations, tabular, {"layer": "1"}),
    ]
    cases = []
    for cls, fixture, params in plans:
        for name, run in explainer_checks(cls, params=params, **fixture):
            cases.append(pytest.param(run, id=f"{cls.name}-{len(fixture['X'].shape)}d-{name}"))
    return cases


@pytest.mark.parametrize("run", _conformance_cases())
def test_conformance_kit(run: Any) -> None:
    run()


FACTORY = '''
import torch

def cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 4 * 4, 10)).eval()
'''


def test_deep_and_layer_methods_run_from_a_suite(tmp_path: Any, monkeypatch: Any) -> None:
    import sys
    import uuid

    yaml = pytest.importorskip("yaml")
    name = f"xaudit_deep_models_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    methods = {
        "deeplift": {}, "shap.deep": {}, "gradcam": {"layer": "0"},
        "gradcam.plusplus": {}, "layer.activations": {"layer": "1"},
        "layer.conductance": {"layer": "1", "n_steps": 8},
        "layer.integrated": {"layer": "1", "n_steps": 8},
        "neuron.conductance": {"layer": "1", "neuron": [0, 2, 2], "n_steps": 8},
    }
    suite = tmp_path / "deep.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "deep-and-layer", "seed": 2,
        "model": {"factory": f"{name}:cnn",
                  "options": {"feature_shape": [1, 8, 8], "modality": "image",
                              "dtype": "float64"}},
        "data": {"source": "sklearn:digits", "shape": [1, 8, 8], "explain": {"n": 3},
                 "background": {"n": 4}},
        "explainers": [{"id": m.replace(".", "_"), "method": m, "params": p}
                       for m, p in methods.items()],
    }, sort_keys=False))
    try:
        result = xaudit.run_suite(suite)
    finally:
        sys.modules.pop(name, None)
    assert not result.explainer_errors, result.explainer_errors
    deep = result.explanations["deeplift"]
    assert deep.values.shape[:-1] == (3, 1, 8, 8)
    outputs = np.take_along_axis(deep_outputs(result), deep.target_indices, axis=1)
    np.testing.assert_allclose(deep.values.sum(axis=(1, 2, 3)) + deep.base_values, outputs,
                               atol=1e-9)
    assert result.explanations["layer_conductance"].values.shape[1:-1] == (4, 8, 8)


def deep_outputs(result: Any) -> np.ndarray:
    """The suite model's outputs on the explained rows (rebuilt from the stored inputs)."""
    e = result.explanations["deeplift"]
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(4 * 4 * 4, 10)).double().eval()
    with torch.no_grad():
        return npy(module(t(e.inputs)))


def test_deeplift_refuses_an_onnx_graph_and_says_why() -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(13)
    weights = numpy_helper.from_array(rng.normal(size=(4, 2)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 2])],
        initializer=[weights])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    model = xaudit.adapt(proto)
    assert "gradients" in model.capabilities
    for method in ("deeplift", "shap.deep"):
        with pytest.raises(CapabilityError, match="ONNX model runs as a graph"):
            xaudit.explain(model, rng.normal(size=(2, 4)), method, background=np.zeros((1, 4)),
                           target=0)
