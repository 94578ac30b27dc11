"""Hyperparameters and structure read from the model itself, for the report's model section.

A validator needs the settings the model was built with as the model holds them, not as a
person remembers them. The core cannot open a framework's model (``DESIGN.md``, "Ask the model,
don't open it"), so a model that can describe itself implements :class:`DescribedModel`:
:meth:`~DescribedModel.hyperparameters` returns one :class:`Hyperparameters` record. The
built-in adapters do (scikit-learn ``get_params``, nested estimators flattened with
scikit-learn's ``outer__inner`` names and each value compared with its class's default;
XGBoost and LightGBM booster parameters; a torch module's layers with parameter counts; an ONNX
graph's opset, node count, inputs and outputs). :func:`hyperparameters_of` asks, and records
why not when a model cannot say; the record is archived in ``results.json`` (``model``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from .safe_text import one_line

MAX_VALUE_CHARACTERS = 120
"""A parameter value's text is cut to this length (a whole vocabulary is not a setting)."""


@dataclass(frozen=True)
class Parameter:
    """One setting: its name, its value as text and, where the class declares one, its
    default (``changed`` is ``None`` when there is no default to compare with)."""

    name: str
    value: str
    default: str | None = None
    changed: bool | None = None


@dataclass(frozen=True)
class Layer:
    """One leaf module of a network: its name, type and parameter counts."""

    name: str
    kind: str
    parameters: int
    trainable: int


@dataclass(frozen=True)
class Hyperparameters:
    """What a model says about how it is built."""

    family: str
    """e.g. ``scikit-learn estimator``, ``XGBoost booster``, ``torch module``, ``ONNX graph``."""
    kind: str = ""
    """The model's class (``GradientBoostingRegressor``) or graph producer."""
    parameters: list[Parameter] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    """Totals and graph facts (parameter counts, opset, node count, inputs, outputs)."""


@runtime_checkable
class DescribedModel(Protocol):
    """A model that reports its own hyperparameters and structure."""

    def hyperparameters(self) -> Hyperparameters:
        """The model's hyperparameters and structure, read from the fitted object."""
        ...


def hyperparameters_of(model: object) -> dict[str, Any]:
    """The JSON-ready :class:`Hyperparameters` of ``model``, or ``{"unavailable": why}``."""
    if not isinstance(model, DescribedModel):
        return {"unavailable": f"the {getattr(model, 'adapter', '?')} adapter does not read "
                               "hyperparameters from its models"}
    try:
        return asdict(model.hyperparameters())
    except Exception as exc:  # a model that cannot describe itself is still audited
        return {"unavailable": one_line(f"reading them failed: {type(exc).__name__}: {exc}")}


def value_text(value: object) -> str:
    """A parameter value as the report prints it: an estimator by its class name, the rest by
    ``repr``, cut to :data:`MAX_VALUE_CHARACTERS`."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        text = type(value).__name__
    else:
        text = repr(value)
    text = one_line(text)
    return text if len(text) <= MAX_VALUE_CHARACTERS else \
        text[: MAX_VALUE_CHARACTERS - 1] + "…"
