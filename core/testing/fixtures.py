"""The conformance kit's fixtures, and the choice of fixtures from what an explainer declares.

A :class:`Fixture` is a small model with rows to explain, background rows and labels. The kit
has six kinds (:data:`FIXTURE_KINDS`), each built once per process on first use:

======== ========= ================================ =========================================
kind     modality  capabilities                     model
======== ========= ================================ =========================================
linear   tabular   predict                          two-output linear function of 4 features
forest   tabular   predict, tree_ensemble, random.  3-class scikit-learn random forest
mlp      tabular   predict, gradients, layers, r.   torch MLP, 4 features -> 3 outputs
image    image     predict, gradients, layers, r.   torch conv + position-attention net, 3x8x8
text     text      predict                          word-count function of raw strings
tokens   text      predict, gradients, layers, r.   torch embedding + attention on 6 token ids
======== ========= ================================ =========================================

(``random.``/``r.``: ``randomization``, which scikit-learn and torch models offer.)

:func:`fixtures_for` gives an explainer one fixture per input modality it declares and the kit
covers: of the kinds of that modality offering every capability it ``requires``, the one
offering the fewest (the first listed on a tie). Raw strings suit only explainers that take
text and nothing else (``lime.text``); an explainer that also takes arrays reads text as token
ids. Every fixture has a background and labels, so ``needs_background`` and ``needs_labels``
explainers run on any of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from ..host import create_host
from ..model import Modality, Model
from ..plugin import Explainer


@dataclass(frozen=True)
class Fixture:
    """A model and the data an explainer is checked on.

    ``X`` holds the rows to explain, ``background`` reference rows, ``y`` one label per row of
    ``X`` (``None`` when there are none). ``params`` are values for the model-specific
    parameters an explainer may need (``layer``, ``neuron``): the kit passes an explainer those
    that its ``Params`` declares (:meth:`params_for`).
    """

    name: str
    model: Model
    X: np.ndarray
    background: np.ndarray
    y: np.ndarray | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def params_for(self, cls: type[Explainer]) -> dict[str, Any]:
        """The fixture's parameters that ``cls.Params`` declares."""
        return {k: v for k, v in self.params.items() if k in cls.Params.model_fields}


@dataclass(frozen=True)
class FixtureKind:
    """One kind of fixture: its modality, the capabilities its model offers, its builder."""

    name: str
    modality: Modality
    capabilities: frozenset[str]
    build: Callable[[], Fixture]
    raw_strings: bool = False
    """Rows are raw strings: only explainers taking nothing but text can read them."""

    def suits(self, cls: type[Explainer]) -> bool:
        """Whether ``cls`` takes this modality and the model offers everything it requires."""
        if self.modality not in cls.modalities or not cls.requires <= self.capabilities:
            return False
        return not self.raw_strings or cls.modalities == {self.modality}


def linear_fixture(seed: int = 0) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray,
                                           np.ndarray]:
    """A two-output linear function of four features, rows to explain, and a background."""
    rng = np.random.default_rng(seed)
    weights = np.array([[1.5, -0.5], [-2.0, 0.25], [0.0, 1.0], [0.75, 0.0]])

    def linear(X: np.ndarray) -> np.ndarray:
        return np.asarray(np.asarray(X, dtype=np.float64) @ weights + np.array([0.5, -1.0]))

    return linear, rng.normal(size=(6, 4)), rng.normal(size=(25, 4))


def _adapt(obj: object, **options: Any) -> Model:
    return create_host(autoload=False).adapt(obj, **options)


@cache
def _linear() -> Fixture:
    function, X, background = linear_fixture()
    model = _adapt(function, feature_shape=[4], output_names=["y0", "y1"])
    noise = np.random.default_rng(1).normal(scale=0.1, size=(X.shape[0], 2))
    return Fixture("linear", model, X, background, y=function(X) + noise)


@cache
def _forest() -> Fixture:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(2)
    train = rng.normal(size=(60, 4))
    labels = (train[:, 0] > 0).astype(int) + (train[:, 1] + train[:, 2] > 0)
    forest = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0)
    forest.fit(train, labels)
    return Fixture("forest", _adapt(forest), train[:6], train[20:40], y=labels[:6])


def _torch_fixture(name: str, network: str, X: np.ndarray, background: np.ndarray,
                   **params: Any) -> Fixture:
    from . import networks

    module = networks.seeded(getattr(networks, network), seed=0)
    model = _adapt(module, dtype="float64", feature_shape=list(X.shape[1:]))
    return Fixture(name, model, X, background, y=np.arange(X.shape[0]) % 2, params=params)


@cache
def _mlp() -> Fixture:
    rng = np.random.default_rng(3)
    return _torch_fixture("mlp", "TabularNet", rng.normal(size=(6, 4)),
                          rng.normal(size=(10, 4)), layer="hidden", neuron=[2])


@cache
def _image() -> Fixture:
    rng = np.random.default_rng(4)
    return _torch_fixture("image", "ImageNet", rng.uniform(size=(4, 3, 8, 8)),
                          rng.uniform(size=(5, 3, 8, 8)), layer="conv", neuron=[1, 3, 4])


@cache
def _tokens() -> Fixture:
    rng = np.random.default_rng(5)
    return _torch_fixture("tokens", "TokenNet", rng.integers(1, 12, size=(4, 6)),
                          rng.integers(1, 12, size=(5, 6)), layer="embedding", neuron=[2, 1])


WORDS = ("good", "bad")


def _word_counts(texts: np.ndarray) -> np.ndarray:
    """Per text: how many words are 'good' and how many 'bad' (two outputs)."""
    words = [re.findall(r"\w+", str(text).lower()) for text in np.ravel(texts)]
    return np.array([[w.count(word) for word in WORDS] for w in words], dtype=np.float64)


@cache
def _text() -> Fixture:
    texts = np.array(["a good film", "bad plot, good cast", "bad bad acting", "good"])
    model = _adapt(_word_counts, modality="text", output_names=list(WORDS))
    return Fixture("text", model, texts, texts, y=np.arange(texts.shape[0]) % 2)


_GRADIENTS = frozenset({"predict", "gradients", "layers", "randomization"})
FIXTURE_KINDS: tuple[FixtureKind, ...] = (
    FixtureKind("linear", "tabular", frozenset({"predict"}), _linear),
    FixtureKind("forest", "tabular", frozenset({"predict", "tree_ensemble", "randomization"}),
                _forest),
    FixtureKind("mlp", "tabular", _GRADIENTS, _mlp),
    FixtureKind("image", "image", _GRADIENTS, _image),
    FixtureKind("text", "text", frozenset({"predict"}), _text, raw_strings=True),
    FixtureKind("tokens", "text", _GRADIENTS, _tokens),
)
"""The kit's fixture kinds, in the order :func:`fixtures_for` prefers them."""


def fixture_kinds_for(cls: type[Explainer]) -> list[FixtureKind]:
    """Per modality ``cls`` takes: the suiting kind offering the fewest capabilities."""
    chosen: list[FixtureKind] = []
    for modality in dict.fromkeys(kind.modality for kind in FIXTURE_KINDS):
        suiting = [k for k in FIXTURE_KINDS if k.modality == modality and k.suits(cls)]
        if suiting:
            chosen.append(min(suiting, key=lambda kind: len(kind.capabilities)))
    return chosen


def fixtures_for(cls: type[Explainer]) -> list[Fixture]:
    """The fixtures ``cls`` is checked on (see the module docstring); built on first use."""
    return [kind.build() for kind in fixture_kinds_for(cls)]


def fixture_for(cls: type[Explainer]) -> Fixture:
    """The first of :func:`fixtures_for`; ``ValueError`` when the kit has none for ``cls``."""
    kinds = fixture_kinds_for(cls)
    if not kinds:
        raise ValueError(
            f"the conformance kit has no fixture for {cls.__name__} (requires "
            f"{sorted(cls.requires)}, modalities {sorted(cls.modalities)}): pass model=, X= "
            "and background= (and y= for needs_labels)")
    return kinds[0].build()
