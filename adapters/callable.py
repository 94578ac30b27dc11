"""Plain callables ``f(X) -> array`` as models.

The input shape and number of outputs are declared by options (``feature_shape`` or
``feature_names``, ``output_names``) or, when omitted, bound on the first call: the first ``X``
fixes the row shape and the first output fixes the number of outputs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xaudit.adapters.fingerprint import state_sha256
from xaudit.errors import ModelLoadError
from xaudit.hookspecs import hookimpl
from xaudit.model import InputSpec, Modality, ModelBase, default_output_names
from xaudit.plugin import Adapter, AdapterOptions
from xaudit.registry import Registry
from xaudit.tables import as_rows


class CallableOptions(AdapterOptions):
    """Options of the ``callable`` adapter."""

    feature_shape: list[int] | None = None
    feature_names: list[str] | None = None
    modality: Modality = "tabular"
    name: str | None = None


@dataclass
class CallableModel(ModelBase):
    """A model whose prediction is a Python function."""

    function: Callable[[np.ndarray], Any] | None = None
    bound: bool = True

    def _predict_raw(self, X: np.ndarray) -> Any:
        assert self.function is not None
        return self.function(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Outputs ``(n, n_outputs)``; the first call fixes shapes left undeclared."""
        if not self.bound:
            X = as_rows(X)
            if not self.input_spec.feature_shape:
                spec = self.input_spec
                self.input_spec = InputSpec(tuple(X.shape[1:]), str(X.dtype), spec.modality,
                                            spec.feature_names)
            if not self.output_names:
                first = np.asarray(self._predict_raw(X[:1]))
                self.output_names = default_output_names(1 if first.ndim == 1 else first.shape[1])
            self.bound = True
        return super().predict(X)

    def fingerprint(self) -> str:
        """SHA-256 of the function's code, constants and (for callable objects) state."""
        return state_sha256(self.function)


class CallableAdapter(Adapter):
    """Any Python callable mapping an array of rows to an array of outputs."""

    name = "callable"
    summary = "A Python function f(X) -> (n,) or (n, n_outputs) array."
    priority = -100
    Options = CallableOptions

    @classmethod
    def claims(cls, obj: object) -> bool:
        """Plain functions and callable objects that are not classes."""
        return callable(obj) and not isinstance(obj, type)

    @classmethod
    def load(cls, obj: object, options: AdapterOptions) -> CallableModel:
        """Wrap ``obj``; shapes come from options or the first call."""
        assert isinstance(options, CallableOptions)
        if not cls.claims(obj):
            raise ModelLoadError(f"the callable adapter needs a function, got {type(obj).__name__}")
        names = tuple(options.feature_names) if options.feature_names else None
        shape = tuple(options.feature_shape) if options.feature_shape else (
            (len(names),) if names else None
        )
        outputs = tuple(options.output_names or ())
        n_outputs = len(outputs)
        return CallableModel(
            name=options.name or str(getattr(obj, "__qualname__", type(obj).__qualname__)),
            adapter=cls.name,
            task=options.task or ("regression" if n_outputs == 1 else "other"),
            input_spec=InputSpec(shape or (), "float64", options.modality, names),
            output_names=outputs,
            framework="python",
            framework_version=sys.version.split()[0],
            function=obj,  # type: ignore[arg-type]
            bound=shape is not None and n_outputs > 0,
        )


@hookimpl
def xaudit_register_adapters(registry: Registry[Adapter]) -> None:
    """Register the ``callable`` adapter."""
    registry.add(CallableAdapter)
