"""An audit result around one explanation or one check result, so ``xaudit.render`` can report it.

``xaudit.render(explanation, "out/")`` writes the report of that explanation alone: the
overview (no gate ran, so its verdict is "no gate"), the data (the explained rows), the method
with its parameters and seed, the global and local explanation sections (importance, waterfalls
of the first rows), limitations and reproducibility. ``xaudit.render(check_result, "out/",
explanation=exp)`` adds the check with its verdict and figures. The suite recorded in
results.json is the one that would have produced them (its model and data are marked as
in-memory); the provenance holds the environment, the seeds and the SHA-256 of the explained
rows (and of the model, when ``model=`` is given).
"""

from __future__ import annotations

from typing import Any

from .auto import recorded_background
from .explanation import Explanation
from .host import Host
from .model import describe_model, sha256_of_arrays
from .provenance import environment, utc_now
from .results import AuditResult, CheckResult

EXPLAINER_ID = "explanation"
"""The explainer id an explanation rendered alone is filed under."""


def standalone_result(subject: Explanation | CheckResult, host: Host, *,
                      explanation: Explanation | None = None, model: Any = None,
                      name: str | None = None) -> AuditResult:
    """``subject`` (with ``explanation`` when it is a check result) as an :class:`AuditResult`.

    ``model``: the explained model (a :class:`~xaudit.Model` or a raw model object), described
    and fingerprinted in the report when given.
    """
    check = subject if isinstance(subject, CheckResult) else None
    exp = subject if isinstance(subject, Explanation) else explanation
    key = check.explainer if check is not None else EXPLAINER_ID
    adapted = None if model is None else host.adapt(model)
    described = describe_model(adapted) if adapted is not None else {
        "name": "not given to xaudit.render", "adapter": "n/a",
        "output_names": list(exp.output_names) if exp is not None else [],
        "input_spec": {} if exp is None else {"feature_shape": list(exp.feature_shape),
                                              "dtype": str(exp.inputs.dtype)}}
    suite: dict[str, Any] = {
        "name": name or (f"check {check.name}" if check is not None else
                         f"explanation {exp.method if exp is not None else ''}".strip()),
        "description": "Rendered from an in-memory result with xaudit.render; no suite ran.",
        "seed": exp.seed if exp is not None else check.seed if check is not None else 0,
        "model": {"object": "in-memory model"},
        "data": {"X": "in-memory rows given to xaudit.explain"},
        "explainers": [] if exp is None else [
            {"id": key, "method": exp.method, "params": exp.params}],
        "checks": [] if check is None else [
            {"check": check.check, "explainer": check.explainer, "id": check.name,
             "params": check.params}],
        "report": {},
    }
    data = {} if exp is None else _data(exp)
    seeds: dict[str, Any] = {"suite": suite["seed"], "explainers": {}, "checks": {}}
    if exp is not None:
        seeds["explainers"][key] = exp.seed
    if check is not None:
        seeds["checks"][check.name] = check.seed
    now = utc_now()
    return AuditResult(
        suite_name=suite["name"], suite=suite, model=described, data=data,
        explanations={} if exp is None else {key: exp},
        checks=[] if check is None else [check],
        provenance={**environment(host),
                    "hashes": {"data": data.get("sha256", ""),
                               "model": described.get("sha256", "")},
                    "seeds": seeds, "started_at": now, "finished_at": now,
                    "timings": {"explainers": {} if exp is None else {key: exp.wall_time_s},
                                "checks": {} if check is None else {
                                    check.name: check.wall_time_s}}})


def _data(exp: Explanation) -> dict[str, Any]:
    """The explained rows as the report's data section reads them: every row explained, no
    split, the background ``auto`` drew from them (if it did)."""
    background = recorded_background(exp)
    given = "n/a (given by the caller)"
    return {
        "source": "in-memory rows given to xaudit.explain",
        "sha256": sha256_of_arrays(exp.inputs.astype(str) if exp.inputs.dtype == object
                                   else exp.inputs),
        "shape": list(exp.inputs.shape),
        "feature_names": list(exp.feature_names),
        "n_train": None, "n_test": None,  # no split: the caller gave the rows
        "explain_rows": list(range(exp.n_rows)),
        "n_background": 0 if background is None else int(background.shape[0]),
        "sampling": {"split": {"test_size": given},
                     "explain": {"n": exp.n_rows, "method": "all", "from": "caller's"},
                     "background": {"n": given, "method": "as given", "from": "caller's"}},
    }
