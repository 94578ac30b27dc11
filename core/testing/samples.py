"""Sample audit results for testing report sections and tools that read results.

:func:`sample_result` runs, through the public API, what a small suite would: two explainers
(``ablation``, ``shap.exact``) of the kit's two-output linear function, a gated
``completeness`` check on each, an explainer that crashed and a check that crashed with it,
with provenance and a documentation block. ``empty=True`` gives the same audit with nothing in
it (no explanation, no check, no error); ``hostile=True`` puts :data:`HOSTILE` (markup and an
attribute breaker) in every string a plugin or user controls: the suite's name and
description, feature and output names, the documentation, and the error messages.
"""

from __future__ import annotations

import copy
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
    return copy.deepcopy(_built(empty, hostile))


@cache
def _built(empty: bool, hostile: bool) -> AuditResult:
    mark = HOSTILE if hostile else ""
    host = create_host(autoload=False)
    function, X, background = linear_fixture()
    features = [f"x{i}{mark}" for i in range(X.shape[1])]
    outputs = [f"y0{mark}", f"y1{mark}"]
    model = host.adapt(function, feature_shape=[X.shape[1]], output_names=outputs)
    suite = parse_suite({
        "name": f"sample-audit{mark}",
        "description": f"A sample audit of a two-output linear function.{mark}",
        "seed": 0,
        "model": {"factory": "sample:linear"},
        "data": {"source": "in-memory arrays", "explain": {"n": X.shape[0]}},
        "explainers": [{"id": "ablation", "method": "ablation"},
                       {"id": "exact", "method": "shap.exact"},
                       {"id": "crashed", "method": "ablation"}],
        "checks": [{"check": "completeness", "explainer": key,
                    "gate": {"threshold": 1e-6}} for key in ("ablation", "exact", "crashed")],
        "report": {"formats": ["json", "html", "md", "junit"]},
        "documentation": {"intended_use": f"Testing report sections.{mark}",
                          "owner": f"xaudit kit{mark}",
                          "reason_codes": {features[0]: f"x0 is high{mark}"}},
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
        errors["crashed"] = ErrorInfo("RuntimeError", f"the explainer crashed{mark}",
                                      f"Traceback (most recent call last):\nRuntimeError{mark}\n")
        checks.append(CheckResult("completeness@crashed", "completeness", "crashed", "lower",
                                  "error", threshold=1e-6, error=ErrorInfo(
                                      "ExplainerFailed", f"explainer 'crashed' crashed{mark}",
                                      "")))
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
