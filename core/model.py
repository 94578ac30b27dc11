"""The ``Model`` protocol: what an explainer may assume about any adapted model.

An adapter (see :mod:`xaudit.adapters`) wraps a framework's model into an object satisfying
:class:`Model`. Explainers and checks ask for optional capabilities by name (``gradients``,
``layers``, ``tree_ensemble``, ``randomization``); the host refuses a mismatch before any work
starts.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np

from .errors import InputError
from .hyperparameters import hyperparameters_of
from .tables import as_rows

Task = Literal["classification", "regression", "other"]
Modality = Literal["tabular", "image", "text", "sequence", "other"]
"""What one row of input is; adapters' ``modality`` options take these values."""
MODALITIES: frozenset[str] = frozenset(get_args(Modality))
"""Every :data:`Modality`, for explainers that take any input (``modalities = MODALITIES``)."""


class Capability(StrEnum):
    """Capabilities a model may offer and an explainer may require."""

    PREDICT = "predict"
    """``predict(X)`` returns ``(n, n_outputs)``; every model has it."""
    GRADIENTS = "gradients"
    """Differentiable through a torch graph."""
    LAYERS = "layers"
    """Named intermediate layers can be read and hooked."""
    TREE_ENSEMBLE = "tree_ensemble"
    """A framework-neutral tree-ensemble structure is available."""
    RANDOMIZATION = "randomization"
    """The model hands out randomized copies of itself (re-initialised layers, permuted leaves,
    retraining on permuted labels; Adebayo et al. 2018): see
    :class:`xaudit.randomization.RandomizableModel`."""


@dataclass(frozen=True)
class InputSpec:
    """What one row of input looks like.

    ``feature_shape`` is the shape of one row (``(10,)`` for ten tabular features, ``(3, 32, 32)``
    for an image); ``feature_names`` are given for tabular inputs.
    """

    feature_shape: tuple[int, ...]
    dtype: str = "float64"
    modality: Modality = "tabular"
    feature_names: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "feature_shape": list(self.feature_shape),
            "dtype": self.dtype,
            "modality": self.modality,
            "feature_names": list(self.feature_names) if self.feature_names else None,
        }


@runtime_checkable
class Model(Protocol):
    """An adapted model. ``predict`` always returns a 2-D float array ``(n, n_outputs)``."""

    name: str
    adapter: str
    task: Task
    capabilities: frozenset[str]
    input_spec: InputSpec
    output_names: tuple[str, ...]
    framework: str
    framework_version: str

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Model outputs for the rows of ``X``, shaped ``(n, n_outputs)``."""
        ...

    def fingerprint(self) -> str:
        """A stable SHA-256 hex digest of the model (file bytes or canonical parameters)."""
        ...


@dataclass
class ModelBase(ABC):
    """Shared output handling for adapters: shapes, dtype, finiteness and output names.

    Subclasses implement :meth:`_predict_raw` (any array-like ``(n,)`` or ``(n, m)``) and
    :meth:`fingerprint`. ``predict`` turns the raw output into a finite float64 ``(n, m)`` array
    and raises :class:`~xaudit.errors.InputError` naming the problem otherwise.
    """

    name: str
    adapter: str
    task: Task
    input_spec: InputSpec
    output_names: tuple[str, ...]
    framework: str = "python"
    framework_version: str = ""
    capabilities: frozenset[str] = field(default_factory=lambda: frozenset({"predict"}))
    capability_reasons: dict[str, str] = field(default_factory=dict)
    """Why the model lacks a capability, for each one its adapter knows it cannot offer
    (``{"tree_ensemble": "booster 'dart' is not supported ..."}``); the host's refusal of a
    method needing it quotes the reason (:func:`xaudit.capabilities.unmet`)."""

    @abstractmethod
    def _predict_raw(self, X: np.ndarray) -> Any:
        """The framework's own prediction for ``X``."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A stable SHA-256 hex digest of the model."""

    @property
    def n_outputs(self) -> int:
        """Number of model outputs."""
        return len(self.output_names)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Validated ``(n, n_outputs)`` float64 outputs of the model on ``X``."""
        X = self.check_input(X)
        out = np.asarray(self._predict_raw(X), dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        if out.ndim != 2 or out.shape[0] != X.shape[0]:
            raise InputError(
                f"model {self.name!r} returned shape {out.shape} for {X.shape[0]} rows; "
                "expected (n_rows,) or (n_rows, n_outputs)"
            )
        if out.shape[1] != self.n_outputs:
            raise InputError(
                f"model {self.name!r} returned {out.shape[1]} outputs but declares "
                f"{self.n_outputs} ({', '.join(self.output_names)})"
            )
        if not np.all(np.isfinite(out)):
            bad = int(np.count_nonzero(~np.isfinite(out)))
            raise InputError(f"model {self.name!r} returned {bad} non-finite output value(s)")
        return out

    def check_input(self, X: np.ndarray) -> np.ndarray:
        """``X`` as an array whose rows match :attr:`input_spec`, or a clear error."""
        X = as_rows(X)
        if X.ndim == len(self.input_spec.feature_shape):
            X = X[None, ...]
        if tuple(X.shape[1:]) != self.input_spec.feature_shape:
            raise InputError(
                f"model {self.name!r} expects rows shaped {self.input_spec.feature_shape}, "
                f"got {tuple(X.shape[1:])}"
            )
        return X


def default_output_names(n_outputs: int, labels: Sequence[Any] | None = None) -> tuple[str, ...]:
    """``labels`` as strings, or ``output_0 ... output_{m-1}``."""
    if labels is not None:
        return tuple(str(label) for label in labels)
    return tuple(f"output_{i}" for i in range(n_outputs))


def sha256_of_arrays(*arrays: np.ndarray, extra: str = "") -> str:
    """A canonical SHA-256 over arrays' dtypes, shapes and C-ordered bytes (plus a text tag)."""
    digest = hashlib.sha256(extra.encode())
    for array in arrays:
        a = np.ascontiguousarray(array)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        if a.dtype == object:
            digest.update(repr(a.tolist()).encode())
        else:
            digest.update(a.tobytes())
    return digest.hexdigest()


def describe_model(model: Model) -> dict[str, Any]:
    """A JSON-ready description of a model, used in provenance and reports."""
    return {
        "name": model.name,
        "adapter": model.adapter,
        "task": model.task,
        "framework": model.framework,
        "framework_version": model.framework_version,
        "capabilities": sorted(model.capabilities),
        "input_spec": model.input_spec.to_dict(),
        "output_names": list(model.output_names),
        "sha256": model.fingerprint(),
        "hyperparameters": hyperparameters_of(model),
    }


@runtime_checkable
class DifferentiableModel(Model, Protocol):
    """A model with the ``gradients`` capability: a torch graph from inputs to outputs.

    Gradient explainers import torch themselves; the core never does, hence ``Any`` here.
    ``torch_forward`` maps input tensors (one per model input, on :attr:`device` with
    :attr:`dtype`) to the ``(n, n_outputs)`` output tensor that ``predict`` returns as numpy
    (after the same output selection: logits or softmax, tuple/dict element).
    """

    device: Any
    dtype: Any
    input_names: tuple[str, ...]

    def to_tensors(self, X: Any) -> tuple[Any, ...]:
        """Numpy input(s) as tensors on the model's device and dtype, one per model input."""
        ...

    def torch_forward(self, *inputs: Any) -> Any:
        """Differentiable outputs ``(n, n_outputs)`` for the given input tensors."""
        ...


@runtime_checkable
class LayeredModel(DifferentiableModel, Protocol):
    """A differentiable model with the ``layers`` capability: named submodules to hook."""

    def layer_names(self) -> list[str]:
        """Names of the layers that can be read (``named_modules`` names in torch)."""
        ...

    def layer(self, name: str) -> Any:
        """The layer called ``name``; raises InputError listing close names otherwise."""
        ...
