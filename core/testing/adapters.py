"""The adapter kit: xaudit's contract for an :class:`~xaudit.plugin.Adapter` and the models it
makes, case by case.

``adapter_checks(MyAdapter, obj)`` loads ``obj`` with the adapter and checks that it claims the
object, that the model keeps the :class:`~xaudit.model.Model` protocol (shapes, finiteness,
determinism, a stable fingerprint), and that every capability it declares works: gradients
agree with central finite differences of ``predict``, the tree structure reproduces the
predictions, the layers it lists can be hooked, and randomization gives new models while the
original stays as it was. A capability the model does not declare is skipped, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from pydantic import ValidationError

from ..capabilities import offers
from ..model import MODALITIES, DifferentiableModel, LayeredModel, Model
from ..plugin import Adapter, class_problems
from ..randomization import RandomizableModel, Randomization
from ..trees import TreeModel
from .cases import Case, CaseSpec, bind, opt_out_problems, skip, valid_opt_outs

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class AdapterSubject:
    """An adapter class, the object it adapts, its options and the rows to predict."""

    cls: type[Adapter]
    obj: object
    options: dict[str, Any]
    rows: np.ndarray | None = None
    problems: list[str] = field(default_factory=list)

    def load(self) -> Model:
        """``obj`` loaded by the adapter with the options."""
        if self.problems:
            raise AssertionError(f"{self.cls.__name__} is malformed, so it cannot be run "
                                 f"(see class_is_well_formed): {'; '.join(self.problems)}")
        try:
            options = self.cls.Options.model_validate(self.options)
        except ValidationError as exc:
            raise AssertionError(f"options {self.options} are invalid for "
                                 f"{self.cls.__name__}: {exc}") from None
        return self.cls.load(self.obj, options)

    @cached_property
    def model(self) -> Model:
        """The model, loaded once for the cases that only use it."""
        return self.load()

    @cached_property
    def X(self) -> np.ndarray:
        """The given rows, else eight seeded normal rows shaped as the model's input."""
        if self.rows is not None:
            return np.asarray(self.rows)
        spec = self.model.input_spec
        if spec.modality == "text" or spec.dtype not in ("float32", "float64"):
            raise AssertionError(f"the kit cannot make {spec.modality} rows of dtype "
                                 f"{spec.dtype}: pass X=")
        return np.random.default_rng(0).normal(size=(8, *spec.feature_shape))


def adapter_checks(cls: type[Adapter], obj: object, X: np.ndarray | None = None,
                   options: dict[str, Any] | None = None) -> list[Case]:
    """The cases checking ``cls`` on ``obj`` (a model it should adapt), as ``(name, run)``
    pairs; ``X`` are rows the model takes (default: normal rows of its input shape),
    ``options`` the adapter's options."""
    problems = class_problems(cls, Adapter) + opt_out_problems(cls, ADAPTER_CASES)
    subject = AdapterSubject(cls, obj, dict(options or {}), X, problems)
    return bind(ADAPTER_CASES, subject, f"on_{type(obj).__name__}",
                valid_opt_outs(cls, ADAPTER_CASES), getattr(cls, "name", cls.__name__))


def _class_is_well_formed(subject: AdapterSubject) -> None:
    assert not subject.problems, "; ".join(subject.problems)


def _options_forbid_unknown(subject: AdapterSubject) -> None:
    try:
        subject.cls.Options.model_validate({"surely_not_an_option": 1})
    except ValidationError:
        return
    raise AssertionError(f"{subject.cls.__name__}.Options accepted an unknown field")


def _claims(subject: AdapterSubject) -> None:
    claimed = subject.cls.claims(subject.obj)
    assert claimed is True, (f"{subject.cls.__name__}.claims returned {claimed!r} for a "
                             f"{type(subject.obj).__name__}; expected True (a bool)")


def _follows_protocol(subject: AdapterSubject) -> None:
    model = subject.model
    assert isinstance(model, Model), f"load returned a {type(model).__name__}, not a Model"
    assert model.adapter == subject.cls.name, (
        f"model.adapter is {model.adapter!r}; expected the adapter's name {subject.cls.name!r}")
    assert "predict" in model.capabilities, "capabilities must include 'predict'"
    model.predict(subject.X[:1])  # a model may learn its outputs on its first call
    assert model.input_spec.modality in MODALITIES, (
        f"input_spec.modality {model.input_spec.modality!r} is none of {sorted(MODALITIES)}")
    named = bool(model.output_names) and all(isinstance(n, str) for n in model.output_names)
    assert named, f"output_names must be a non-empty tuple of strings, got {model.output_names!r}"
    first = model.fingerprint()
    assert HEX64.match(first), f"fingerprint() must be a SHA-256 hex digest, got {first!r}"
    assert subject.load().fingerprint() == first, "loading the same object twice changed the "\
        "fingerprint: it must depend on the model only"


def _predictions_shaped(subject: AdapterSubject) -> None:
    model, X = subject.model, subject.X
    out = model.predict(X)
    expected = (X.shape[0], len(model.output_names))
    floats = isinstance(out, np.ndarray) and out.dtype == np.float64
    assert floats, (f"predict must return a float64 array, got {type(out).__name__} "
                    f"{getattr(out, 'dtype', '')}")
    assert out.shape == expected, f"predict: expected {expected}, got {out.shape}"
    assert np.isfinite(out).all(), "predict returned NaN or infinite outputs"


def _predictions_deterministic(subject: AdapterSubject) -> None:
    model, X = subject.model, subject.X
    first = model.predict(X)
    np.testing.assert_array_equal(model.predict(X), first,
                                  err_msg="predicting the same rows twice gave other outputs")
    single = np.concatenate([model.predict(X[i:i + 1]) for i in range(X.shape[0])])
    np.testing.assert_allclose(single, first, rtol=1e-5, atol=1e-6 * max(
        1.0, float(np.abs(first).max())), err_msg="a row's output depends on the other rows "
        "of the batch (is the model in training mode?)")


def _gradients(subject: AdapterSubject) -> None:
    model = subject.model
    if not offers(model, "gradients"):
        skip("the model does not declare (or implement) the capability 'gradients'")
    assert isinstance(model, DifferentiableModel)
    if len(model.input_names) != 1 or model.input_spec.dtype not in ("float32", "float64"):
        skip("finite differences need one floating-point input")
    import torch

    X = subject.X[:3].astype(np.float64)
    (tensor,) = model.to_tensors(X)
    tensor = tensor.detach().requires_grad_(True)
    outputs = model.torch_forward(tensor)
    flat = X.reshape(X.shape[0], -1)
    picks = np.random.default_rng(1).choice(flat.shape[1], size=min(6, flat.shape[1]),
                                            replace=False)
    scale = 1e-3 if model.input_spec.dtype == "float32" else 1e-5
    for j in range(outputs.shape[1]):
        (grad,) = torch.autograd.grad(outputs[:, j].sum(), tensor, retain_graph=True)
        grad = grad.detach().cpu().numpy().astype(np.float64).reshape(X.shape[0], -1)
        for i in picks:
            h = scale * max(1.0, float(np.abs(flat[:, i]).max()))
            step = np.zeros_like(flat)
            step[:, i] = h
            up = model.predict((flat + step).reshape(X.shape))[:, j]
            down = model.predict((flat - step).reshape(X.shape))[:, j]
            numeric = (up - down) / (2 * h)
            np.testing.assert_allclose(
                grad[:, i], numeric, rtol=5e-2, atol=5e-2 * max(1.0, float(np.abs(numeric).max())),
                err_msg=f"the gradient of output {model.output_names[j]!r} along input "
                f"coordinate {i} differs from central finite differences of predict: does "
                "torch_forward compute what predict returns?")


def _trees(subject: AdapterSubject) -> None:
    model = subject.model
    if not offers(model, "tree_ensemble"):
        skip("the model does not declare (or implement) the capability 'tree_ensemble'")
    assert isinstance(model, TreeModel)
    X = subject.X.reshape(subject.X.shape[0], -1)
    ensemble = model.tree_ensemble()
    raw = ensemble.predict_raw(X)
    transformed = ensemble.transform(raw)
    candidates = [raw, transformed]
    if raw.shape[1] == 1:  # a binary model's two outputs from one score
        candidates += [np.concatenate([-raw, raw], axis=1),
                       np.concatenate([1.0 - transformed, transformed], axis=1)]
    predicted = model.predict(subject.X)
    tolerance = 1e-6 * max(1.0, float(np.abs(predicted).max()))
    assert any(c.shape == predicted.shape and np.allclose(c, predicted, rtol=1e-5,
                                                          atol=tolerance) for c in candidates), (
        f"the tree structure's outputs ({ensemble.output_transform} of its raw scores) do not "
        "reproduce predict: tree explainers would explain another model")


def _layers(subject: AdapterSubject) -> None:
    model = subject.model
    if not offers(model, "layers"):
        skip("the model does not declare (or implement) the capability 'layers'")
    assert isinstance(model, LayeredModel)
    names = model.layer_names()
    assert names, "layer_names() is empty although the model declares 'layers'"
    fired: list[str] = []
    handles = []
    for name in names:
        layer = model.layer(name)
        assert hasattr(layer, "register_forward_hook"), (
            f"layer({name!r}) is a {type(layer).__name__}, not a hookable torch module")
        handles.append(layer.register_forward_hook(
            lambda *_, name=name: fired.append(name)))
    try:
        model.torch_forward(*model.to_tensors(subject.X[:2]))
    finally:
        for handle in handles:
            handle.remove()
    assert fired, f"no listed layer ({', '.join(names[:5])}, ...) ran in torch_forward"


def _randomization(subject: AdapterSubject) -> None:
    model = subject.model
    if not offers(model, "randomization"):
        skip("the model does not declare (or implement) the capability 'randomization'")
    assert isinstance(model, RandomizableModel)
    kinds = model.randomizations()
    assert kinds, "randomizations() is empty although the model declares 'randomization'"
    X = subject.X
    outputs = model.predict(X)
    labels = outputs.argmax(axis=1) if model.task == "classification" else outputs[:, 0]
    original = model.fingerprint()
    for kind in kinds:
        request = Randomization(kind, max_layers=2, probe_rows=X, X_train=X, y_train=labels)
        stages = model.randomized(request, np.random.default_rng(0))
        assert stages, f"randomized({kind!r}) gave no stage"
        for stage in stages:
            assert isinstance(stage.model, Model), f"stage {stage.name!r} is not a Model"
            assert stage.model.fingerprint() != original, (
                f"randomization {kind!r} stage {stage.name!r} has the original's fingerprint")
            assert stage.model.predict(X).shape == outputs.shape
        assert model.fingerprint() == original, f"randomization {kind!r} changed the original"
        np.testing.assert_array_equal(model.predict(X), outputs,
                                      err_msg=f"randomization {kind!r} changed the original")


ADAPTER_CASES: tuple[CaseSpec[AdapterSubject], ...] = (
    CaseSpec("class_is_well_formed", _class_is_well_formed,
             "the registry would accept the class (`claims` and `load`, strict `Options`)"),
    CaseSpec("options_forbid_unknown_fields", _options_forbid_unknown,
             "`Options` refuses a field it does not declare"),
    CaseSpec("claims_the_object", _claims, "`claims(obj)` is `True`"),
    CaseSpec("model_follows_the_protocol", _follows_protocol,
             "the loaded model is a `Model` named after the adapter, offers `predict`, names "
             "its outputs and has a stable SHA-256 fingerprint"),
    CaseSpec("predictions_are_shaped_and_finite", _predictions_shaped,
             "`predict` gives finite float64 `(n, n_outputs)`"),
    CaseSpec("predictions_are_deterministic", _predictions_deterministic,
             "the same rows give the same outputs, one at a time or in a batch"),
    CaseSpec("gradients_match_finite_differences", _gradients,
             "`gradients`: autograd through `torch_forward` agrees with central differences "
             "of `predict`"),
    CaseSpec("tree_structure_reproduces_predictions", _trees,
             "`tree_ensemble`: the structure's (transformed) output equals `predict`"),
    CaseSpec("layers_are_listed_and_hookable", _layers,
             "`layers`: `layer_names()` lists torch modules that take forward hooks and run"),
    CaseSpec("randomization_gives_new_models", _randomization,
             "`randomization`: each offered kind gives models with new fingerprints and "
             "leaves the original unchanged"),
)
"""The adapter contract, case by case, in the order :func:`adapter_checks` runs them."""
