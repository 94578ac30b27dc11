"""Sample audit results for testing report sections and tools that read results.

:func:`sample_result` runs, through the public API, what a small suite would: two explainers
(``ablation``, ``shap.exact``) of the kit's two-output linear function, a gated
``completeness`` check on each, an explainer that crashed and a check that crashed with it,
with provenance and a documentation block. ``empty=True`` gives the same audit with nothing in
it (no explanation, no check, no error); ``hostile=True`` passes it through :func:`hostile`.
"""

from __future__ import annotations

import copy
import dataclasses
from functools import cache
from typing import Any

from ..api import check, explain
from ..data import Dataset
from ..host import create_host
from ..model import describe_model
from ..provenance import environment
from ..results import AuditResult, CheckResult, ErrorInfo
from ..suite import GateSpec, parse_suite
from .fixtures import linear_fixture

HOSTILE = "<script>alert('xaudit')</script>\"><img src=x onerror=alert(1)>"
"""A string that breaks out of text and attributes if a template does not escape it."""
FINISHED = "2025-01-02T03:04:05+00:00"


def sample_result(*, empty: bool = False, hostile: bool = False) -> AuditResult:
    """A small, complete audit result (see the module docstring): a copy of the one built on
    the first call, so a test may change it."""
    built = _built(empty)
    return make_hostile(built) if hostile else copy.deepcopy(built)


def make_hostile(result: AuditResult) -> AuditResult:
    """A copy of ``result`` with :data:`HOSTILE` (markup and an attribute breaker) appended to
    every string a user or a plugin controls: the suite's name, description and documentation,
    the model's and outputs' names, feature names, explainer and check ids, the strings in
    check details, and error messages."""
    bad = copy.deepcopy(result)
    bad.suite_name = _mark(bad.suite_name)
    suite = bad.suite
    suite["name"], suite["description"] = bad.suite_name, _mark(suite.get("description", ""))
    documentation = suite.get("documentation") or {}
    for key in ("intended_use", "owner", "contact", "inventory_id"):
        if documentation.get(key):
            documentation[key] = _mark(documentation[key])
    documentation["reason_codes"] = {_mark(k): _mark(v) for k, v in
                                     (documentation.get("reason_codes") or {}).items()}
    for spec in suite.get("explainers", []):
        spec["id"] = _mark(spec["id"])
    for spec in suite.get("checks", []):
        spec["explainer"] = _mark(spec["explainer"])
    bad.model["name"] = _mark(bad.model.get("name", "model"))
    bad.model["output_names"] = [_mark(n) for n in bad.model.get("output_names", [])]
    bad.data["feature_names"] = [_mark(n) for n in bad.data.get("feature_names", [])]
    for explanation in bad.explanations.values():
        explanation.feature_names = tuple(map(_mark, explanation.feature_names))
        explanation.output_names = tuple(map(_mark, explanation.output_names))
    bad.explanations = {_mark(k): v for k, v in bad.explanations.items()}
    bad.explainer_errors = {_mark(k): dataclasses.replace(e, message=_mark(e.message))
                            for k, e in bad.explainer_errors.items()}
    for measured in bad.checks:
        measured.name, measured.explainer = _mark(measured.name), _mark(measured.explainer)
        measured.details = _marked(measured.details)
        error = measured.error
        if error is not None:
            measured.error = dataclasses.replace(error, message=_mark(error.message))
    return bad


def _mark(text: str) -> str:
    return f"{text}{HOSTILE}"


def _marked(value: Any) -> Any:
    if isinstance(value, str):
        return _mark(value)
    if isinstance(value, dict):
        return {k: _marked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_marked(v) for v in value]
    return value


@cache
def _built(empty: bool) -> AuditResult:
    host = create_host(autoload=False)
    function, X, background = linear_fixture()
    features = [f"x{i}" for i in range(X.shape[1])]
    model = host.adapt(function, feature_shape=[X.shape[1]], output_names=["y0", "y1"])
    suite = parse_suite({
        "name": "sample-audit",
        "description": "A sample audit of a two-output linear function.",
        "seed": 0,
        "model": {"factory": "sample:linear"},
        "data": {"source": "in-memory arrays", "explain": {"n": X.shape[0]}},
        "explainers": [{"id": "ablation", "method": "ablation"},
                       {"id": "exact", "method": "shap.exact"},
                       {"id": "crashed", "method": "ablation"}],
        "checks": [{"check": "completeness", "explainer": key,
                    "gate": {"threshold": 1e-6}} for key in ("ablation", "exact", "crashed")],
        "report": {"formats": ["json", "html", "md", "junit"]},
        "documentation": {"intended_use": "Testing report sections.", "owner": "xaudit kit",
                          "reason_codes": {features[0]: "x0 is high"}},
    }, "sample suite")
    data = Dataset.from_arrays(X, feature_names=features, background=background)
    explanations, checks = {}, []
    errors: dict[str, ErrorInfo] = {}
    if not empty:
        for key in ("ablation", "exact"):
            method = "ablation" if key == "ablation" else "shap.exact"
            explanations[key] = explain(model, X, method, background=background,
                                        feature_names=features, host=host)
            checks.append(check("completeness", model, explanations[key], host=host,
                                gate=GateSpec(threshold=1e-6), explainer_id=key,
                                label=f"completeness@{key}"))
        errors["crashed"] = ErrorInfo("RuntimeError", "the explainer crashed",
                                      "Traceback (most recent call last):\nRuntimeError\n")
        checks.append(CheckResult("completeness@crashed", "completeness", "crashed", "lower",
                                  "error", threshold=1e-6, error=ErrorInfo(
                                      "ExplainerFailed", "explainer 'crashed' crashed", "")))
    provenance: dict[str, Any] = {
        **environment(host), "command": "xaudit run sample.yaml",
        "hashes": {"suite": suite.sha256, "model": model.fingerprint(),
                   "data": data.fingerprint},
        "seeds": {"suite": 0, "explainers": {}, "checks": {}},
        "timings": {"total_s": 0.0}, "started_at": FINISHED, "finished_at": FINISHED,
    }
    return AuditResult(
        suite_name=suite.name, suite=suite.model_dump(mode="json", by_alias=True),
        model=describe_model(model), data=data.describe(), explanations=explanations,
        explainer_errors=errors, checks=checks, provenance=provenance)
