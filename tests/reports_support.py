"""Builders for the report tests: small AuditResults made by hand, and PDF readers.

The results are built from their parts (no model is run), so each test controls exactly what
the report must show: hostile feature names, a crashed explainer, 120 features, images, text.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xaudit.explanation import Explanation
from xaudit.results import AuditResult, CheckResult, ErrorInfo

FINISHED = "2025-03-04T05:06:07+00:00"


def linear_explanation(names: Sequence[str], n: int = 8, seed: int = 0,
                       method: str = "ablation") -> tuple[Explanation, np.ndarray]:
    """Exact attributions of a linear model ``w·x`` against the zero reference; and ``w``."""
    rng = np.random.default_rng(seed)
    d = len(names)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d) * np.linspace(2.0, 0.1, d)
    values = (X * w)[..., None]
    explanation = Explanation(
        method=method, values=values, base_values=np.full((n, 1), 1.5),
        feature_names=tuple(names), output_names=("score",),
        target_indices=np.zeros((n, 1), dtype=np.int64), inputs=X,
        params={"baseline": "zero"}, seed=11, wall_time_s=0.01, additive=True,
    )
    return explanation, w


def make_result(names: Sequence[str], *, n: int = 8, crashed: bool = False,
                documentation: dict[str, Any] | None = None,
                extra: dict[str, Explanation] | None = None,
                report: dict[str, Any] | None = None, suite_name: str = "report-test",
                model_name: str = "linear") -> AuditResult:
    """A complete AuditResult with one explanation, one gated check and full provenance."""
    explanation, _ = linear_explanation(names, n)
    explanations = {"abl": explanation, **(extra or {})}
    explainers: list[dict[str, Any]] = [
        {"id": key, "method": e.method, "params": {}} for key, e in explanations.items()]
    errors = {}
    if crashed:
        explainers.append({"id": "boom", "method": "ablation", "params": {}})
        errors["boom"] = ErrorInfo("ZeroDivisionError", "the explainer divided by zero",
                                   "Traceback (most recent call last):\n  File \"x.py\", line 1"
                                   "\nZeroDivisionError: the explainer divided by zero\n")
    check = CheckResult(
        name="completeness@abl", check="completeness", explainer="abl", direction="lower",
        status="pass", value=2e-12, threshold=1e-6, values=np.full(n, 2e-12),
        details={"max_error": 2e-12, "worst_row": 0}, params={"aggregate": "max"}, seed=5,
        model_calls=1, wall_time_s=0.001)
    suite: dict[str, Any] = {
        "name": suite_name, "description": f"A hand-built audit of {suite_name}.", "seed": 3,
        "model": {"factory": "m:f"}, "data": {"source": "in-memory"},
        "explainers": explainers,
        "checks": [{"check": "completeness", "explainer": "abl"}],
        "report": {"formats": ["json", "html", "pdf", "md", "junit"], **(report or {})},
    }
    if documentation is not None:
        suite["documentation"] = documentation
    d = len(names)
    return AuditResult(
        suite_name=suite_name,
        suite=suite,
        model={"name": model_name, "adapter": "callable", "task": "regression",
               "framework": "python", "framework_version": "", "capabilities": ["predict"],
               "input_spec": {"feature_shape": [d], "dtype": "float64", "modality": "tabular",
                              "feature_names": list(names)},
               "output_names": ["score"], "sha256": "ab" * 32},
        data={"source": "in-memory arrays", "sha256": "cd" * 32, "shape": [n, d],
              "feature_names": list(names), "categorical": [], "target": None,
              "n_train": n, "n_test": n, "explain_rows": list(range(100, 100 + n)),
              "n_background": n, "sampling": {}},
        explanations=explanations,
        explainer_errors=errors,
        checks=[check],
        provenance={"xaudit_version": "0.1.0", "python": "3.11", "platform": "test",
                    "packages": {"numpy": np.__version__}, "plugins": [],
                    "command": "pytest", "hashes": {"suite": "ef" * 32, "model": "ab" * 32,
                                                    "data": "cd" * 32},
                    "seeds": {"suite": 3, "explainers": {"abl": 11}, "checks": {}},
                    "timings": {"total_s": 0.5}, "started_at": "2025-03-04T05:06:00+00:00",
                    "finished_at": FINISHED},
        suite_text="",
    )


def xmp_root(pdf_bytes: bytes) -> ET.Element:
    """The XMP metadata packet of a PDF, parsed (found by its packet markers)."""
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf_bytes))
    stream = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    body = re.search(rb"<x:xmpmeta.*</x:xmpmeta>", stream, flags=re.S)
    assert body is not None, "no XMP packet"
    return ET.fromstring(body.group(0))


def pdf_text(path: Path) -> list[str]:
    """The text of each page."""
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(str(path)).pages]
