"""How each adapter family reads a model's hyperparameters (:mod:`xaudit.hyperparameters`).

- scikit-learn API (scikit-learn, and the XGBoost and LightGBM estimators): ``get_params(deep=
  True)``, so nested estimators and Pipeline steps appear under scikit-learn's own
  ``outer__inner`` names; each value is compared with the default its owner's class declares in
  its ``__init__`` signature (scikit-learn's convention; keyword arguments a class only accepts
  through ``**kwargs`` have no default to compare with);
- a bare XGBoost ``Booster``: the learner's saved configuration (``save_config``), flattened;
  a bare LightGBM ``Booster``: its ``params`` and the saved model's header;
- a torch module: every leaf module with its own parameter count and trainable count, and the
  totals (``sum(p.numel())`` over ``module.parameters()``);
- an ONNX graph: opset, producer, node and initializer counts, inputs and outputs.

Nothing here imports a framework: each function reads the object it is handed.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from xaudit.hyperparameters import Hyperparameters, Layer, Parameter, value_text


def estimator_hyperparameters(estimator: Any, family: str) -> Hyperparameters:
    """``get_params(deep=True)`` of a scikit-learn-API estimator, each value against its
    owner's class default."""
    params = estimator.get_params(deep=True)
    rows = []
    for name in sorted(params):
        owner_name, _, own = name.rpartition("__")
        owner = params.get(owner_name, estimator) if owner_name else estimator
        default = _declared_default(owner, own)
        value = value_text(params[name])
        rows.append(Parameter(name, value, default,
                              None if default is None else value != default))
    return Hyperparameters(family, type(estimator).__name__, rows)


def _declared_default(owner: Any, name: str) -> str | None:
    try:
        signature = inspect.signature(type(owner).__init__)
    except (TypeError, ValueError):
        return None
    parameter = signature.parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return value_text(parameter.default)


def xgboost_booster_hyperparameters(booster: Any) -> Hyperparameters:
    """A bare XGBoost Booster's saved learner configuration, flattened to dotted names."""
    config = json.loads(booster.save_config())
    flat: dict[str, str] = {}
    _flatten(config, "", flat)
    return Hyperparameters("XGBoost booster", "Booster",
                           [Parameter(k, flat[k]) for k in sorted(flat)],
                           facts={"trees": str(len(booster.get_dump()))})


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value_text(value)


def lightgbm_booster_hyperparameters(booster: Any, header: dict[str, str]) -> Hyperparameters:
    """A bare LightGBM Booster's ``params`` (training arguments kept with it) and the saved
    model's header (objective, classes, trees)."""
    params = {str(k): value_text(v) for k, v in (booster.params or {}).items()}
    return Hyperparameters("LightGBM booster", "Booster",
                           [Parameter(k, params[k]) for k in sorted(params)],
                           facts={k: header[k] for k in ("objective", "num_class",
                                                         "num_tree_per_iteration",
                                                         "max_feature_idx") if k in header}
                           | {"trees": str(booster.num_trees())})


def torch_hyperparameters(module: Any) -> Hyperparameters:
    """A torch module's leaf modules with their parameter counts, and the totals."""
    layers = []
    for name, child in module.named_modules():
        if any(True for _ in child.children()):
            continue
        own = list(child.parameters(recurse=False))
        layers.append(Layer(name or type(child).__name__, type(child).__name__,
                            sum(int(p.numel()) for p in own),
                            sum(int(p.numel()) for p in own if p.requires_grad)))
    everything = list(module.parameters())
    return Hyperparameters("torch module", type(module).__name__, layers=layers, facts={
        "parameters": str(sum(int(p.numel()) for p in everything)),
        "trainable parameters": str(sum(int(p.numel()) for p in everything
                                        if p.requires_grad)),
        "leaf modules": str(len(layers)),
        "training mode": "train" if module.training else "eval"})


def onnx_hyperparameters(producer: str, opset: int, nodes: int, initializers: int,
                         inputs: list[str], outputs: list[str]) -> Hyperparameters:
    """An ONNX graph's facts: opset, producer, node and initializer counts, inputs, outputs."""
    return Hyperparameters("ONNX graph", producer or "unknown producer", facts={
        "opset": str(opset), "nodes": str(nodes), "initializers": str(initializers),
        "inputs": ", ".join(inputs), "outputs": ", ".join(outputs)})
