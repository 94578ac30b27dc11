"""Conformance kit for plugin authors: run xaudit's contract checks on your explainer or check.

One line in a plugin's test suite::

    import pytest
    from xaudit.testing import explainer_checks

    @pytest.mark.parametrize("name, run", explainer_checks(MyExplainer))
    def test_conformance(name, run):
        run()

Each check raises ``AssertionError`` with a message that says which part of the contract is
broken. Explainers needing no capability are run on a small linear model built here; pass
``model``, ``X`` and ``background`` for others (e.g. a tree ensemble for ``tree_ensemble``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from .api import explain
from .explanation import Explanation
from .hookspecs import hookimpl
from .host import Host, create_host
from .model import Model
from .plugin import Check, Explainer, class_problems
from .registry import Registry

ConformanceCase = tuple[str, Callable[[], None]]


@dataclass
class _Fixture:
    model: Model
    X: np.ndarray
    background: np.ndarray
    params: dict[str, Any]


def linear_fixture(seed: int = 0) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray,
                                           np.ndarray]:
    """A two-output linear function of four features, rows to explain, and a background."""
    rng = np.random.default_rng(seed)
    weights = np.array([[1.5, -0.5], [-2.0, 0.25], [0.0, 1.0], [0.75, 0.0]])

    def linear(X: np.ndarray) -> np.ndarray:
        return np.asarray(np.asarray(X, dtype=np.float64) @ weights + np.array([0.5, -1.0]))

    return linear, rng.normal(size=(6, 4)), rng.normal(size=(25, 4))


def _host_with(cls: type[Explainer]) -> Host:
    host = create_host(autoload=False)
    if cls.name in host.explainers:
        return host

    class _Plugin:
        @hookimpl
        def xaudit_register_explainers(self, registry: Registry[Explainer]) -> None:
            registry.add(cls)

    return create_host(plugins=[_Plugin()], autoload=False)


def explainer_checks(
    cls: type[Explainer],
    model: object | None = None,
    X: np.ndarray | None = None,
    background: np.ndarray | None = None,
    params: dict[str, Any] | None = None,
) -> list[ConformanceCase]:
    """``(name, run)`` pairs checking ``cls`` against the explainer contract."""
    host = _host_with(cls)
    if model is None:
        if cls.requires:
            raise ValueError(f"{cls.__name__} requires {sorted(cls.requires)}: pass a model "
                             "that offers it, with X and background")
        function, X, background = linear_fixture()
        model = host.adapt(function, feature_shape=[4], output_names=["y0", "y1"])
    if X is None or background is None:
        raise ValueError("pass X and background together with model")
    fixture = _Fixture(host.adapt(model), np.asarray(X), np.asarray(background),
                       dict(params or {}))
    cases: list[ConformanceCase] = [
        ("class_is_well_formed", lambda: _class_is_well_formed(cls)),
        ("params_forbid_unknown_fields", lambda: _params_forbid_unknown(cls)),
    ]
    for name, check in (
        ("values_follow_the_result_schema", _values_follow_schema),
        ("targets_select_output_slots", _targets_select_slots),
        ("same_seed_same_values", _same_seed_same_values),
        ("inputs_are_not_modified", _inputs_not_modified),
        ("additive_methods_are_complete_on_linear_models", _additive_is_complete),
        ("explanation_round_trips", _round_trips),
    ):
        cases.append((name, _bind(check, cls, fixture, host)))
    return cases


def _bind(check: Callable[[type[Explainer], _Fixture, Host], None], cls: type[Explainer],
          fixture: _Fixture, host: Host) -> Callable[[], None]:
    return lambda: check(cls, fixture, host)


def _run(cls: type[Explainer], fixture: _Fixture, host: Host, X: np.ndarray | None = None,
         seed: int = 0, target: Any = "all") -> Explanation:
    return explain(fixture.model, fixture.X if X is None else X, cls.name,
                   background=fixture.background, seed=seed, target=target, host=host,
                   **fixture.params)


def _class_is_well_formed(cls: type[Explainer]) -> None:
    problems = class_problems(cls, Explainer)
    assert not problems, "; ".join(problems)


def _params_forbid_unknown(cls: type[Explainer]) -> None:
    try:
        cls.Params.model_validate({"surely_not_a_parameter": 1})
    except ValidationError:
        return
    raise AssertionError(f"{cls.__name__}.Params accepted an unknown field")


def _values_follow_schema(cls: type[Explainer], fixture: _Fixture, host: Host) -> None:
    exp = _run(cls, fixture, host)
    model = fixture.model
    n, shape, m = fixture.X.shape[0], fixture.X.shape[1:], len(model.output_names)
    if exp.metadata.get("feature_names"):  # values over units the method names (tokens, layers)
        shape = (len(exp.metadata["feature_names"]),)
    assert exp.values.shape == (n, *shape, m), (
        f"values shaped {exp.values.shape}, expected {(n, *shape, m)} for target='all'"
    )
    assert np.all(np.isfinite(exp.values)), "values contain NaN or infinity"
    if exp.base_values is not None:
        assert exp.base_values.shape == (n, m), f"base_values shaped {exp.base_values.shape}"
    if exp.std_errors is not None:
        assert np.all(exp.std_errors >= 0), "standard errors must be non-negative"
    json.dumps(exp.metadata)


def _targets_select_slots(cls: type[Explainer], fixture: _Fixture, host: Host) -> None:
    every = _run(cls, fixture, host)
    last = _run(cls, fixture, host, target=-1)
    assert last.values.shape[-1] == 1, "a single target must give one output slot"
    np.testing.assert_allclose(last.values[..., 0], every.values[..., -1], rtol=1e-7,
                               atol=1e-9, err_msg="target=-1 differs from slot -1 of 'all'"
                               " (for stochastic methods: same seed expected to agree)")


def _same_seed_same_values(cls: type[Explainer], fixture: _Fixture, host: Host) -> None:
    first, second = _run(cls, fixture, host, seed=3), _run(cls, fixture, host, seed=3)
    np.testing.assert_array_equal(first.values, second.values,
                                  err_msg="the same seed must give identical values")


def _inputs_not_modified(cls: type[Explainer], fixture: _Fixture, host: Host) -> None:
    X, background = fixture.X.copy(), fixture.background.copy()
    _run(cls, fixture, host)
    np.testing.assert_array_equal(fixture.X, X, err_msg="explain modified X")
    np.testing.assert_array_equal(fixture.background, background,
                                  err_msg="explain modified the background")


def _additive_is_complete(cls: type[Explainer], fixture: _Fixture, host: Host) -> None:
    if not cls.additive:
        return
    exp = _run(cls, fixture, host)
    assert exp.base_values is not None, "an additive method must give base values"
    outputs = fixture.model.predict(fixture.X)
    axes = tuple(range(1, exp.values.ndim - 1))
    np.testing.assert_allclose(exp.values.sum(axis=axes) + exp.base_values, outputs,
                               rtol=1e-6, atol=1e-6,
                               err_msg="attributions + base value != model output")


def _round_trips(cls: type[Explainer], fixture: _Fixture, host: Host) -> None:
    exp = _run(cls, fixture, host)
    record, arrays = exp.to_record()
    back = Explanation.from_record(json.loads(json.dumps(record)), arrays)
    np.testing.assert_array_equal(back.values, exp.values)
    assert back.params == exp.params, "params must survive JSON (use JSON-ready types)"
    assert back.handoff == exp.handoff, "the hand-off must survive results.json and arrays.npz"


def check_is_well_formed(cls: type[Check]) -> None:
    """Raise ``AssertionError`` if ``cls`` would be refused by the check registry."""
    problems = class_problems(cls, Check)
    assert not problems, "; ".join(problems)
