"""Model fingerprints tell fitted states apart at any depth and agree across processes.

The oracle is the models' own predictions: two models that predict differently must hash
differently, and a fresh interpreter building the same model must get the same hash.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import fingerprint_models as cases
import numpy as np
import pytest

import xaudit
from xaudit.adapters.fingerprint import state_sha256

X = cases.data()[0]


def _differ_in_prediction_and_hash(first: object, second: object) -> None:
    predict_first = getattr(first, "predict", first)
    predict_second = getattr(second, "predict", second)
    assert not np.allclose(predict_first(X), predict_second(X))  # the states really differ
    assert state_sha256(first) != state_sha256(second)


def test_transformed_target_pipeline_forest_fitted_on_two_targets_hash_differently() -> None:
    _differ_in_prediction_and_hash(cases.target_forest(0), cases.target_forest(1))
    assert state_sha256(cases.target_forest(0)) == state_sha256(cases.target_forest(0))
    a = xaudit.adapt(cases.target_forest(0)).fingerprint()
    assert a != xaudit.adapt(cases.target_forest(1)).fingerprint()


def test_stacking_regressors_on_two_targets_hash_differently() -> None:
    _differ_in_prediction_and_hash(cases.stacking(0), cases.stacking(1))
    assert state_sha256(cases.stacking(1)) == state_sha256(cases.stacking(1))


def test_deeply_nested_pipelines_are_walked_to_the_bottom() -> None:
    # 40 levels put the tree's arrays well past the old depth cap of 12 and far past any
    # recursion a recursive walk could survive at 200 levels.
    _differ_in_prediction_and_hash(cases.nested_pipeline(40, 0), cases.nested_pipeline(40, 1))
    deep_a, deep_b = cases.nested_pipeline(200, 0), cases.nested_pipeline(200, 1)
    assert state_sha256(deep_a) != state_sha256(deep_b)
    assert state_sha256(deep_a) == state_sha256(cases.nested_pipeline(200, 0))


def test_deep_plain_structures_beyond_the_recursion_limit() -> None:
    def nested(leaf: float) -> list[object]:
        value: list[object] = [leaf]
        for _ in range(sys.getrecursionlimit() * 3):
            value = [value]
        return value

    assert state_sha256(nested(1.0)) != state_sha256(nested(2.0))
    assert state_sha256(nested(1.0)) == state_sha256(nested(1.0))


def test_torch_module_inside_a_wrapper_hashes_its_weights() -> None:
    pytest.importorskip("torch")
    _differ_in_prediction_and_hash(cases.TorchWrapper(0), cases.TorchWrapper(1))
    assert state_sha256(cases.TorchWrapper(0)) == state_sha256(cases.TorchWrapper(0))
    changed = cases.TorchWrapper(0)
    with __import__("torch").no_grad():
        changed.net[2].bias += 1e-3
    _differ_in_prediction_and_hash(cases.TorchWrapper(0), changed)
    # the callable adapter fingerprints the wrapper by the same walk
    wrapped = [xaudit.adapt(cases.TorchWrapper(seed), adapter="callable") for seed in (0, 1)]
    assert wrapped[0].fingerprint() != wrapped[1].fingerprint()


def test_closures_hash_what_they_capture() -> None:
    def scaled(factor: float):  # type: ignore[no-untyped-def]
        return lambda rows: rows * factor

    assert state_sha256(scaled(2.0)) != state_sha256(scaled(3.0))
    assert state_sha256(scaled(2.0)) == state_sha256(scaled(2.0))


class _Node:
    def __init__(self, value: float) -> None:
        self.value = value
        self.peer: _Node | None = None


def test_cycles_end_and_still_depend_on_the_state() -> None:
    def ring(value: float) -> _Node:
        first, second = _Node(value), _Node(0.0)
        first.peer, second.peer = second, first
        return first

    assert state_sha256(ring(1.0)) == state_sha256(ring(1.0))
    assert state_sha256(ring(1.0)) != state_sha256(ring(2.0))
    looped: list[object] = [1]
    looped.append(looped)
    assert state_sha256(looped) != state_sha256([1, [1]])


def test_same_state_gives_the_same_hash_in_a_fresh_process() -> None:
    pytest.importorskip("torch")
    program = "import fingerprint_models; fingerprint_models.print_fingerprints()"
    completed = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                               check=True, cwd=Path(__file__).parent, timeout=240,
                               env={**os.environ, "PYTHONHASHSEED": "12345"})
    there = json.loads(completed.stdout)
    here = {name: state_sha256(build()) for name, build in cases.CASES.items()}
    assert there == here
