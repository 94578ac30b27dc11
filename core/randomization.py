"""Model randomization as a capability: the model randomizes itself, checks only ask.

Adebayo et al. 2018, "Sanity Checks for Saliency Maps" (NeurIPS), test an explanation by
randomizing the model it explains: the *model parameter randomization test* re-initialises a
network's layers (cascading from the output, or one layer at a time) and the *data
randomization test* retrains the model on permuted labels. For tree ensembles the analogue of
re-initialising the weights is to permute (or redraw) each tree's leaf values. A check must not
open a model to do this (it would depend on an adapter's fields, see ``DESIGN.md``, "Ask the
model, don't open it"); instead a model that can randomize itself

- declares the capability ``randomization`` (:attr:`xaudit.model.Capability.RANDOMIZATION`), and
- implements :class:`RandomizableModel`: :meth:`~RandomizableModel.randomizations` names the
  kinds it offers, :meth:`~RandomizableModel.randomized` answers one :class:`Randomization`
  request with the randomized models, one :class:`RandomizedStage` per stage.

The well-known kinds (:data:`KINDS`) are ``layers`` (parameters re-initialised; stages as the
request's ``mode`` and ``max_layers`` say, the torch seed ``reinit_seed`` set before each layer),
``leaves`` (every tree's leaf values permuted or resampled) and ``labels`` (a copy retrained on
the request's training rows with labels permuted by ``rng``). Every randomized model is a full
:class:`~xaudit.model.Model` whose fingerprint differs from the original's, and the original is
left untouched. Proxies that wrap a model forward both methods (:func:`offered`,
:func:`randomize`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from .errors import CapabilityError, InputError
from .model import Capability, Model

LAYERS, LEAVES, LABELS = "layers", "leaves", "labels"
KINDS: tuple[str, ...] = (LAYERS, LEAVES, LABELS)
"""The randomizations xaudit's adapters offer; a third-party adapter may name others."""
LayerMode = Literal["cascading", "independent"]
LeafDraw = Literal["permute", "resample"]


@dataclass(frozen=True, eq=False)
class Randomization:
    """One request to randomize a model; each kind reads the fields that concern it.

    ``layers``: ``mode`` ``cascading`` (stage ``i`` randomizes the top ``i + 1`` layers,
    counted from the output) or ``independent`` (stage ``i`` randomizes layer ``i`` alone), at
    most ``max_layers`` stages, the framework's seed set to ``reinit_seed`` before each layer.
    ``leaves``: ``permute`` each tree's leaf values among its leaves, or ``resample`` them from
    their mean and spread. ``labels``: retrain on ``X_train`` with ``y_train`` permuted.
    ``probe_rows`` are rows the randomized models will be asked about (the explained rows):
    an adapter that must show its randomization acts on the model's real outputs (a tree
    structure reproducing the predictions) checks on them.
    """

    kind: str
    mode: LayerMode = "cascading"
    max_layers: int | None = None
    reinit_seed: int = 0
    leaves: LeafDraw = "permute"
    probe_rows: np.ndarray | None = None
    X_train: np.ndarray | None = None
    y_train: np.ndarray | None = None

    def training(self, model: Model) -> tuple[np.ndarray, np.ndarray]:
        """The training rows and labels, or an InputError naming ``model``."""
        if self.X_train is None or self.y_train is None:
            raise InputError(f"randomizing the labels of model {model.name!r} needs the "
                             "training rows and labels (X_train, y_train)")
        return self.X_train, self.y_train


@dataclass(frozen=True)
class RandomizedStage:
    """One randomized model and the stage's name (a layer's name, ``leaves``, ``labels``)."""

    name: str
    model: Model


@runtime_checkable
class RandomizableModel(Model, Protocol):
    """A model with the ``randomization`` capability: it hands out randomized copies of itself."""

    def randomizations(self) -> tuple[str, ...]:
        """The kinds this model can randomize, the one ``auto`` should pick first."""
        ...

    def randomized(self, request: Randomization,
                   rng: np.random.Generator) -> tuple[RandomizedStage, ...]:
        """The randomized models for ``request``, in stage order (at least one).

        ``rng`` is the only source of randomness besides ``request.reinit_seed``; the model
        itself is not changed. Raises :class:`~xaudit.errors.CapabilityError` (see
        :func:`refusal`) for a kind it does not offer.
        """
        ...


def offered(model: Model) -> tuple[str, ...]:
    """The kinds ``model`` offers: none unless it declares the capability and the protocol."""
    if Capability.RANDOMIZATION not in model.capabilities or not isinstance(
            model, RandomizableModel):
        return ()
    return tuple(model.randomizations())


def randomize(model: Model, request: Randomization,
              rng: np.random.Generator) -> tuple[RandomizedStage, ...]:
    """Ask ``model`` for ``request``; a CapabilityError naming the kinds it offers otherwise."""
    if request.kind not in offered(model) or not isinstance(model, RandomizableModel):
        raise refusal(model, request.kind)
    stages = model.randomized(request, rng)
    if not stages:
        raise CapabilityError(f"model {model.name!r} gave no randomized model for "
                              f"randomization {request.kind!r}")
    return stages


def refusal(model: Model, kind: str | None = None) -> CapabilityError:
    """The error for a kind ``model`` does not offer (any kind when ``None``; raise it),
    naming the model and the kinds it does offer."""
    kinds = offered(model)
    offers = f"it offers {', '.join(kinds)}" if kinds else "it offers no randomization"
    wanted = "anything" if kind is None else repr(kind)
    return CapabilityError(
        f"model {model.name!r} (adapter {model.adapter!r}) cannot randomize {wanted}: {offers}. "
        "layers need a torch model, leaves a tree ensemble, labels an estimator with the "
        "scikit-learn API; an adapter offers randomization through the 'randomization' "
        "capability and xaudit.randomization.RandomizableModel")
