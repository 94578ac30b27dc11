"""``conforms`` answers exactly as ``isinstance`` on runtime-checkable protocols (the oracle),
for adapted models of several frameworks and for objects that miss a member."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import xaudit
from xaudit.hyperparameters import DescribedModel
from xaudit.model import DifferentiableModel, LayeredModel, Model
from xaudit.protocols import conforms
from xaudit.randomization import RandomizableModel
from xaudit.trees import TreeModel

PROTOCOLS = (Model, DifferentiableModel, LayeredModel, TreeModel, RandomizableModel,
             DescribedModel)


def adapted_models() -> list[object]:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    return [
        xaudit.adapt(net, device="cpu", feature_shape=[3]),
        xaudit.adapt(DecisionTreeClassifier(max_depth=2).fit(X, y)),
        xaudit.adapt(LogisticRegression().fit(X, y)),
        xaudit.adapt(lambda rows: rows.sum(1), feature_shape=[3]),
    ]


def stand_ins(model: object) -> list[object]:
    """Copies of ``model``'s public members as plain namespaces: complete, one member
    missing, one method set to ``None``."""
    members = {name: getattr(model, name) for name in dir(model)
               if not name.startswith("_") and hasattr(model, name)}
    complete = types.SimpleNamespace(**members)
    missing = types.SimpleNamespace(**{k: v for k, v in members.items() if k != "predict"})
    nulled = types.SimpleNamespace(**{**members, "fingerprint": None})
    return [complete, missing, nulled, object(), "text"]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.__name__)
def test_conforms_agrees_with_isinstance(protocol: type) -> None:
    objects = [obj for model in adapted_models() for obj in (model, *stand_ins(model))]
    answers = [conforms(obj, protocol) for obj in objects]
    assert answers == [isinstance(obj, protocol) for obj in objects]
    if protocol is Model:
        assert any(answers)  # the cases discriminate
        assert not all(answers)
