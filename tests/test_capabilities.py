"""Capability preconditions: one check (``xaudit.capabilities``), one message, one Modality.

The host's negotiation and the plugins' own checks refuse with the same sentence: the method,
what it needs, and the model (name, adapter, input, capabilities). A capability counts only
when the model declares it and implements its protocol.
"""

from __future__ import annotations

import re
from typing import Any, get_args

import numpy as np
import pytest

import xaudit
from xaudit.capabilities import offers, refusal, require, unmet
from xaudit.errors import CapabilityError
from xaudit.hookspecs import hookimpl
from xaudit.model import MODALITIES, InputSpec, Modality, ModelBase
from xaudit.plugin import Check, CheckOutcome
from xaudit.seeding import rng_for
from xaudit.targets import resolve_targets

SENTENCE = re.compile(r"^(?P<method>.+?) needs (?P<what>.+?), which model '(?P<model>[^']+)' "
                      r"\(adapter '(?P<adapter>[^']+)', (?P<modality>\w+) input, capabilities: "
                      r"(?P<caps>[^)]*)\) does not offer(?:; (?P<hint>.*))?$")


class Plain(ModelBase):
    """Predicts the row sums; ``capabilities`` as given (no torch graph behind them)."""

    def _predict_raw(self, X: np.ndarray) -> Any:
        return np.asarray(X, dtype=np.float64).reshape(len(X), -1).sum(axis=1)

    def fingerprint(self) -> str:
        return "0" * 64


def plain(*capabilities: str, modality: Modality = "tabular") -> Plain:
    return Plain(name="plain", adapter="test", task="regression",
                 input_spec=InputSpec((3,), modality=modality), output_names=("y",),
                 capabilities=frozenset({"predict", *capabilities}))


class NeedsGradients(Check):
    name = "test.needs_gradients"
    direction = "lower"
    requires = frozenset({"gradients"})

    def run(self, model: Any, explanation: Any, data: Any, rng: Any) -> CheckOutcome:
        raise AssertionError("must be refused before any work")


class NeedsGradientsPlugin:
    __name__ = "needs_gradients_check"

    @hookimpl
    def xaudit_register_checks(self, registry: Any) -> None:
        registry.add(NeedsGradients)


def parts(error: BaseException) -> dict[str, str]:
    found = SENTENCE.match(str(error))
    assert found, f"not the one refusal sentence: {error}"
    return found.groupdict()


def test_declared_but_not_implemented_is_not_offered() -> None:
    model = plain("gradients", "layers", "tree_ensemble")
    for capability in ("gradients", "layers", "tree_ensemble"):
        assert not offers(model, capability)
    assert offers(model, "predict")
    assert unmet(model, ["gradients", "predict"], ["image", "text"]) == [
        "capability 'gradients'", "image or text input"]
    assert unmet(model, ["predict"], MODALITIES) == []


def test_require_refuses_with_the_one_sentence() -> None:
    with pytest.raises(CapabilityError) as info:
        require(plain(), "gradients", "gradient.saliency")
    assert parts(info.value) == {"method": "gradient.saliency", "what": "capability 'gradients'",
                                 "model": "plain", "adapter": "test", "modality": "tabular",
                                 "caps": "predict", "hint": None}
    assert require(plain(), "predict", "ablation").name == "plain"
    hinted = refusal("x", ["a", "b"], plain(modality="image"), "try y")
    assert parts(hinted)["what"] == "a and b"
    assert parts(hinted)["hint"] == "try y"


def test_host_and_plugins_refuse_alike() -> None:
    model = plain()
    host = xaudit.create_host(autoload=False)
    with pytest.raises(CapabilityError) as negotiated:
        host.negotiate("gradient.saliency", model)
    said = parts(negotiated.value)
    assert said["method"] == "explainer 'gradient.saliency'"
    assert said["what"] == "capability 'gradients'"
    assert said["hint"].startswith("explainers that work with this model: ")
    host.negotiate_check("deletion", model)  # needs only predict: not refused
    with_check = xaudit.create_host(plugins=[NeedsGradientsPlugin()], autoload=False)
    with pytest.raises(CapabilityError) as checked:
        with_check.negotiate_check("test.needs_gradients", model)
    assert parts(checked.value)["method"] == "check 'test.needs_gradients'"
    assert parts(checked.value)["what"] == "capability 'gradients'"
    # the plugin's own check, reached without the host's negotiation
    X = np.ones((2, 3))
    targets = resolve_targets(0, model.output_names, 2, model.predict(X))
    for method in ("gradient.saliency", "layer.activations", "deeplift"):
        explainer = host.explainer(method, {"layer": "0"} if method.startswith("layer") else {})
        with pytest.raises(CapabilityError) as direct:
            explainer.explain(model, X, background=X, targets=targets, rng=rng_for(0))
        assert parts(direct.value)["method"] == method


def test_one_modality_type() -> None:
    assert frozenset(get_args(Modality)) == MODALITIES
    from xaudit.adapters.callable import CallableOptions
    from xaudit.adapters.onnx.adapter import OnnxOptions
    from xaudit.adapters.torch.adapter import TorchOptions

    for options in (CallableOptions, OnnxOptions, TorchOptions):
        for modality in sorted(MODALITIES):
            assert options.model_validate({"modality": modality}).modality == modality
        with pytest.raises(ValueError, match="modality"):
            options.model_validate({"modality": "video"})
    host = xaudit.create_host(autoload=False)
    for _, cls in host.explainers.items():
        assert cls.modalities <= MODALITIES, cls.name
