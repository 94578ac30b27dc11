"""Layer methods on a layer whose forward returns a tuple attribute every tensor, as Captum does.

Issue 13, defect 12 (a peer case from Captum's test suite): layer conductance on a layer that
returns ``(a, b)`` read ``a`` only and dropped ``b``'s share of the attribution. Captum's
``LayerConductance``, ``LayerIntegratedGradients`` and ``LayerActivation`` return one
attribution per element; ours lays them side by side (``layer#0[...]``, ``layer#1[...]``) and
records the layout. The oracle is Captum on the same float64 module; the completeness of
conductance (its sum over all units approaches ``f(x) - f(baseline)``) shows nothing is lost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
nn = torch.nn

import xaudit  # noqa: E402
from xaudit.errors import InputError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class Split(nn.Module):
    """Returns a tuple: ``tanh(A x)`` shaped (3,) and ``relu(B x)`` shaped (2, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 4)

    def forward(self, x: Any) -> Any:
        return torch.tanh(self.a(x)), torch.relu(self.b(x)).view(-1, 2, 2)


class WithNone(nn.Module):
    """Returns ``(tanh(A x), None)``, as blocks that return optional extras do."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 7)

    def forward(self, x: Any) -> Any:
        return torch.tanh(self.a(x)), None


class Net(nn.Module):
    def __init__(self, with_none: bool = False) -> None:
        super().__init__()
        self.with_none = with_none
        self.split: nn.Module = WithNone() if with_none else Split()
        self.head = nn.Linear(7, 3)

    def forward(self, x: Any) -> Any:
        if self.with_none:
            a, _ = self.split(x)
            return self.head(a)
        a, b = self.split(x)
        return self.head(torch.cat([a, b.flatten(1)], dim=1))


@pytest.fixture(scope="module")
def net() -> tuple[Any, Any]:
    torch.manual_seed(3)
    module = Net().double().eval()
    return module, xaudit.adapt(module, dtype="float64", feature_shape=[4])


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(2).normal(size=(5, 4))


def t(a: np.ndarray) -> Any:
    return torch.tensor(a, dtype=torch.float64)


def assert_rel(actual: Any, expected: Any, tol: float = 1e-7) -> None:
    """``max |a - e| <= tol * max |e|`` (Captum draws its path points in float32)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.abs(actual - expected).max() <= tol * np.abs(expected).max()


def flat(parts: Any) -> np.ndarray:
    """Captum's tuple of per-element attributions, each flattened, side by side."""
    return np.concatenate([p.detach().numpy().reshape(p.shape[0], -1) for p in parts], axis=1)


def test_layer_conductance_attributes_every_element_like_captum(net: Any,
                                                                rows: np.ndarray) -> None:
    module, model = net
    e = xaudit.explain(model, rows, "layer.conductance", layer="split", target=1, n_steps=30)
    ref = captum_attr.LayerConductance(module, module.split).attribute(
        t(rows), target=1, n_steps=30)
    assert isinstance(ref, tuple)
    assert len(ref) == 2
    assert e.values.shape == (5, 3 + 4, 1)
    assert_rel(e.values[..., 0], flat(ref))
    assert e.feature_names[:4] == ("split#0[0]", "split#0[1]", "split#0[2]", "split#1[0,0]")
    assert e.metadata["layer_outputs"] == [
        {"name": "split#0", "shape": [3], "offset": 0, "size": 3},
        {"name": "split#1", "shape": [2, 2], "offset": 3, "size": 4}]
    with torch.no_grad():  # summed over every unit, conductance gives f(x) - f(0)
        change = (module(t(rows)) - module(t(np.zeros_like(rows))))[:, 1].numpy()
    np.testing.assert_allclose(e.values[..., 0].sum(axis=1), change, rtol=1e-2)


def test_layer_integrated_gradients_attribute_every_element_like_captum(
        net: Any, rows: np.ndarray) -> None:
    module, model = net
    e = xaudit.explain(model, rows, "layer.integrated", layer="split", target=[0, 2],
                       n_steps=20)
    for slot, target in enumerate((0, 2)):
        ref = captum_attr.LayerIntegratedGradients(module, module.split).attribute(
            t(rows), target=target, n_steps=20)
        assert_rel(e.values[..., slot], flat(ref))


def test_layer_activations_of_every_element_like_captum(net: Any, rows: np.ndarray) -> None:
    module, model = net
    e = xaudit.explain(model, rows, "layer.activations", layer="split", target=0)
    ref = captum_attr.LayerActivation(module, module.split).attribute(t(rows))
    np.testing.assert_allclose(e.values[..., 0], flat(ref), rtol=1e-12)


def test_neuron_conductance_names_the_element_like_a_captum_selector(
        net: Any, rows: np.ndarray) -> None:
    module, model = net
    e = xaudit.explain(model, rows, "neuron.conductance", layer="split", element=1,
                       neuron=[1, 0], target=2, n_steps=25)
    ref = captum_attr.NeuronConductance(module, module.split).attribute(
        t(rows), neuron_selector=lambda out: out[1][:, 1, 0], target=2, n_steps=25,
        method="gausslegendre")
    assert_rel(e.values[..., 0], ref.detach().numpy())
    with pytest.raises(InputError, match=r"tuple of 2 tensors.*element: 0 \.\. 1"):
        xaudit.explain(model, rows, "neuron.conductance", layer="split", neuron=[1],
                       target=2)


def test_a_tuple_with_one_tensor_reads_like_a_tensor() -> None:
    torch.manual_seed(4)
    module = Net(with_none=True).double().eval()
    model = xaudit.adapt(module, dtype="float64", feature_shape=[4])
    X = np.random.default_rng(5).normal(size=(3, 4))
    e = xaudit.explain(model, X, "layer.activations", layer="split", target=0)
    with torch.no_grad():
        expected = torch.tanh(module.split.a(t(X))).numpy()
    np.testing.assert_allclose(e.values[..., 0], expected, rtol=1e-12)
    assert e.feature_names[0] == "split[0]"
    assert "layer_outputs" not in e.metadata
