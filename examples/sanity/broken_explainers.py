"""Deliberately broken explainers, for showing that the sanity checks catch them.

Not built-ins: load this module as a plugin (``xaudit -p broken_explainers run suite.yaml`` from
this folder, or ``create_host(plugins=[module])``). Each ignores the model, as in Adebayo et al.
2018, "Sanity Checks for Saliency Maps":

- ``broken.random``: standard normal values drawn from the explainer's seed;
- ``broken.input``: the input itself (``x`` times one), a "gradient * input" without gradient;
- ``broken.edge``: the Sobel edge magnitude of an image row (channels summed, then spread back
  over the channels), the edge-detector example of the paper;
- ``broken.constant``: zero everywhere, a map that ranks and correlates with nothing: the
  checks report their statistic as undefined (NaN, failing every gate) and say why.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from xaudit.explanation import Attribution
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class _Broken(Explainer):
    modalities = frozenset({"tabular", "image"})
    limitations = ("Ignores the model on purpose: a negative control for sanity checks.",)

    def values(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """The same map for every targeted output."""
        base = self.values(np.asarray(X, dtype=np.float64), rng)
        return Attribution(values=np.repeat(base[..., None], targets.n_slots, axis=-1))


class RandomAttribution(_Broken):
    """Standard normal noise of the input's shape."""

    name = "broken.random"
    summary = "Random attributions (negative control)."
    stochastic = True

    def values(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noise from the explainer's seed."""
        return rng.standard_normal(X.shape)


class InputAttribution(_Broken):
    """The input itself."""

    name = "broken.input"
    summary = "The input as its own attribution (negative control)."

    def values(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A copy of ``X``."""
        return X.copy()


class ConstantAttribution(_Broken):
    """Zero for every feature."""

    name = "broken.constant"
    summary = "All-zero attributions (negative control: a map that ranks nothing)."

    def values(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Zeros of ``X``'s shape."""
        return np.zeros_like(X)


class EdgeAttribution(_Broken):
    """Sobel edge magnitude of image rows (2-D, or 3-D with channels first)."""

    name = "broken.edge"
    summary = "Sobel edge detector on the image (negative control, Adebayo et al. 2018)."
    modalities = frozenset({"image"})

    def values(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Edge magnitude, spread over the channels."""
        planes = X if X.ndim == 3 else X.sum(axis=1)
        gy = ndimage.sobel(planes, axis=1)
        gx = ndimage.sobel(planes, axis=2)
        edges = np.hypot(gx, gy)
        return edges if X.ndim == 3 else np.repeat(edges[:, None], X.shape[1], axis=1)


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register the broken explainers."""
    for cls in (RandomAttribution, InputAttribution, ConstantAttribution, EdgeAttribution):
        registry.add(cls)
