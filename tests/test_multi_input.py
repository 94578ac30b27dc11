"""Multi-input models through ``xaudit.explain`` and suites: one attribution per input.

Oracles: the module itself, called by the test with one element of one input changed
(brute-force ablation), and ``torch.autograd`` on the module's own inputs (gradients).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import xaudit  # noqa: E402
from xaudit.errors import InputError  # noqa: E402
from xaudit.multi_input import PackedModel, input_slots, pack_inputs, pack_rows  # noqa: E402
from xaudit.results import AuditResult  # noqa: E402

SHAPES = [[4], [1, 5, 5]]


class TwoInput(nn.Module):
    """One dense branch (4 tabular features), one conv branch (a 1x5x5 image)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(4, 8)
        self.conv = nn.Conv2d(1, 2, 3)
        self.head = nn.Linear(8 + 2 * 3 * 3, 3)

    def forward(self, tabular: Any, image: Any) -> Any:
        joint = torch.cat([torch.tanh(self.dense(tabular)), F.relu(self.conv(image)).flatten(1)],
                          1)
        return self.head(joint)


def network() -> nn.Module:
    torch.manual_seed(3)
    return TwoInput().eval()


def native(net: nn.Module, tab: np.ndarray, img: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = net(torch.as_tensor(tab, dtype=torch.float32),
                  torch.as_tensor(img, dtype=torch.float32))
    return np.asarray(out.double().numpy())


def inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.normal(size=(n, 1, 5, 5))


def test_ablation_gives_one_attribution_per_input_equal_to_brute_force() -> None:
    net = network()
    model = xaudit.adapt(net, feature_shape=SHAPES, device="cpu")
    tab, img = inputs(3, 0)
    explanation = xaudit.explain(model, (tab, img), method="ablation", baseline="zero",
                                 target="all", background=inputs(2, 5))
    parts = explanation.per_input()
    assert list(parts) == ["tabular", "image"]
    first, second = (parts[name] for name in model.input_names)
    assert first.shape == (3, 4, 3)
    assert second.shape == (3, 1, 5, 5, 3)
    full = native(net, tab, img)
    for i in range(4):
        changed = tab.copy()
        changed[:, i] = 0.0
        np.testing.assert_allclose(first[:, i], full - native(net, changed, img), atol=1e-6)
    for index in [(0, 0, 0), (0, 2, 3), (0, 4, 4)]:
        changed = img.copy()
        changed[(slice(None), *index)] = 0.0
        np.testing.assert_allclose(second[(slice(None), *index)],
                                   full - native(net, tab, changed), atol=1e-6)
    assert explanation.feature_names[:5] == ("tabular[0]", "tabular[1]", "tabular[2]",
                                             "tabular[3]", "image[0,0,0]")
    assert [slot["name"] for slot in explanation.metadata["inputs"]] == ["tabular", "image"]


def test_packed_gradients_are_each_inputs_own_gradients() -> None:
    net = network()
    packed = pack_inputs(xaudit.adapt(net, feature_shape=SHAPES, device="cpu"))
    tab, img = inputs(5, 1)
    (flat,) = packed.to_tensors((tab, img))
    flat.requires_grad_(True)
    (grad,) = torch.autograd.grad(packed.torch_forward(flat)[:, 1].sum(), (flat,))
    ta, tb = (torch.as_tensor(a, dtype=torch.float32).requires_grad_() for a in (tab, img))
    ga, gb = torch.autograd.grad(net(ta, tb)[:, 1].sum(), (ta, tb))
    np.testing.assert_array_equal(grad[:, :4].numpy(), ga.numpy())
    np.testing.assert_array_equal(grad[:, 4:].numpy(), gb.reshape(5, -1).numpy())
    assert packed.layer_names() == xaudit.adapt(net, feature_shape=SHAPES).layer_names()


def test_packing_refuses_inputs_of_the_wrong_shape_naming_the_input() -> None:
    model = xaudit.adapt(network(), feature_shape=SHAPES, device="cpu")
    tab, img = inputs(2, 0)
    with pytest.raises(InputError, match=r"input 'image' expects rows shaped \(1, 5, 5\)"):
        xaudit.explain(model, (tab, img[:, :, :4]), method="ablation", baseline="zero")
    with pytest.raises(InputError, match="takes 2 inputs"):
        xaudit.explain(model, tab, method="ablation", baseline="zero")
    slots = input_slots(model)
    assert pack_rows(slots, {"image": img, "tabular": tab}, "m").shape == (2, 29)


def test_suite_explains_a_two_input_model_from_packed_rows(tmp_path: Path,
                                                           monkeypatch: Any) -> None:
    net = network()
    model = xaudit.adapt(net, feature_shape=SHAPES, device="cpu")
    tab, img = inputs(30, 2)
    packed = pack_rows(input_slots(model), (tab, img), "two")
    np.savez(tmp_path / "rows.npz", X=packed, y=np.zeros(30))
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "two_models.py").write_text(
        "import torch\n"
        f"sys_path = {str(Path(__file__).parent)!r}\n"
        "import sys\nsys.path.insert(0, sys_path)\n"
        "from test_multi_input import TwoInput\n"
        "def build(data):\n"
        "    net = TwoInput()\n"
        "    net.load_state_dict(torch.load(__file__.replace('two_models.py', 'weights.pt'),"
        " weights_only=True))\n"
        "    return net.eval()\n")
    suite = {
        "name": "two-input", "seed": 1,
        "model": {"factory": "two_models:build",
                  "options": {"feature_shape": SHAPES, "device": "cpu"}},
        "data": {"source": "rows.npz", "explain": {"n": 4}, "background": {"n": 5}},
        "explainers": [{"id": "abl", "method": "ablation", "params": {"baseline": "zero"},
                        "target": "all"}],
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    monkeypatch.setattr(sys, "path", list(sys.path))
    result: AuditResult = xaudit.run_suite(path)
    assert not result.explainer_errors
    explanation = result.explanations["abl"]
    assert explanation.values.shape == (4, 29, 3)
    parts = explanation.per_input()
    rows = explanation.inputs
    tab_rows, img_rows = rows[:, :4], rows[:, 4:].reshape(4, 1, 5, 5)
    changed = tab_rows.copy()
    changed[:, 2] = 0.0
    np.testing.assert_allclose(parts["tabular"][:, 2],
                               native(net, tab_rows, img_rows) - native(net, changed, img_rows),
                               atol=1e-6)
    assert isinstance(pack_inputs(model), PackedModel)
