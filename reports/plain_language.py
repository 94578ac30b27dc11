"""The executive summary in plain words: what was tested, what passed and failed, what it
means, the main caveats, and what the reviewer must still decide.

Written deterministically from the saved results (no language model): the same results give
the same sentences. :func:`plain_summary` returns plain text paragraphs; each output escapes
them its own way (the HTML report by autoescaping, Markdown with ``md_escape``), since names
of models, checks and features come from the user's data and code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..results import AuditResult, CheckResult
from ..suite import DocumentationSpec
from .analysis import errors, explanations
from .reasons import Reconciled, reconcile
from .verdict import verdict

if TYPE_CHECKING:
    from ..host import Host

FEW_SUBJECTS = 30
"""Below this many explained subjects, the summary warns that the figures are uncertain."""

FAILURE_MEANINGS: dict[str, str] = {
    "completeness": "the explanation's contributions do not add up to the model's output, so "
                    "they misstate how much each factor counted",
    "deletion": "removing the factors the explanation ranks highest does not change the "
                "output faster than removing random ones, so the ranking may not reflect what "
                "the model uses",
    "insertion": "restoring the factors the explanation ranks highest does not recover the "
                 "output faster than random ones, so the ranking may not reflect what the "
                 "model uses",
    "agreement": "two explanation methods disagree about which factors matter, so at least "
                 "one of them is misleading",
    "stability": "running the same explanation again with other random draws gives a "
                 "different ranking, so a single run cannot be relied on",
    "model_randomization": "the explanation barely changes when the model is scrambled, so it "
                           "may describe the data rather than the model",
    "faithfulness_correlation": "the importance the explanation gives to groups of factors "
                                "does not track how much the output changes without them",
    "infidelity": "the explanation predicts the effect of small changes poorly",
    "max_sensitivity": "a tiny change to the input changes the explanation a lot",
    "avg_sensitivity": "small changes to the input change the explanation a lot on average",
    "concentration": "a single factor carries most of the explanation, which often signals a "
                     "leaked outcome or an identifier",
    "forbidden_features": "a protected or forbidden factor drives the model's outputs or its "
                          "adverse decisions",
    "reason_codes_complete": "some reasons given for adverse decisions have no documented "
                             "statement to send to the person concerned",
}
"""What a failure of each built-in check means, for a reader who does not know the method.
Other checks fall back to their plugin's one-line summary; performance and drift checks to
the sentences below."""


def plain_summary(result: AuditResult, documentation: DocumentationSpec | None = None,
                  meanings: Mapping[str, str] | None = None,
                  reasons: Reconciled | None = None) -> list[str]:
    """The executive summary as paragraphs of plain text.

    ``meanings`` maps a check's registered name to what it measures (:func:`check_meanings`;
    used for checks :data:`FAILURE_MEANINGS` does not cover); ``reasons`` are the reconciled
    adverse-action reasons (computed from ``result`` when not given).
    """
    found = reasons if reasons is not None else reconcile(result, documentation)
    paragraphs = [_tested(result, documentation, found), _outcome(result, meanings or {}),
                  _meaning(result), _caveats(result, found), _decide(result, documentation,
                                                                     found)]
    return [p for p in paragraphs if p]


def check_meanings(host: Host | None) -> dict[str, str]:
    """Each loaded check's one-line summary, by registered name (for :func:`plain_summary`)."""
    if host is None:
        return {}
    return {name: cls.summary for name, cls in host.checks.items() if cls.summary}


def _tested(result: AuditResult, documentation: DocumentationSpec | None,
            found: Reconciled) -> str:
    model, data = result.model, result.data
    task = model.get("task")
    kind = f"a {task} model" if task else "a model"
    methods = [f"{key} ({e.method})" for key, e in explanations(result)]
    crashed = [key for key, _ in errors(result)]
    n = len(data.get("explain_rows") or []) or _rows(result)
    text = (f"This audit examined {kind} named “{model.get('name', 'model')}”, with data from "
            f"{data.get('source') or 'the caller'}. It explained the model's outputs for "
            f"{_count(n, 'subject')}")
    background = data.get("n_background")
    if background:
        text += f", compared with {_count(background, 'reference row')}"
    text += (f", using {_count(len(methods) + len(crashed), 'explanation method')}"
             f"{': ' + _join(methods) if methods else ''}, and ran "
             f"{_count(len(result.checks), 'check')} on the model and its explanations.")
    if found.not_applicable is None:
        text += (f" Under the documented decision rule, {len(found.subjects)} of {found.rows} "
                 f"subjects received an adverse decision; their reasons come from "
                 f"{found.primary}.")
    if documentation is not None and documentation.intended_use.strip():
        text += f" The model's documented purpose: {documentation.intended_use.strip()}"
        text += "" if text.endswith(".") else "."
    return text


def _outcome(result: AuditResult, meanings: Mapping[str, str]) -> str:
    gated = [c for c in result.checks if c.status in ("pass", "fail", "warn")]
    failed = [c for c in result.checks if c.status == "fail"]
    warned = [c for c in result.checks if c.status == "warn"]
    broken = [c for c in result.checks if c.status == "error"]
    outcome = verdict(result)
    if not gated and not broken:
        sentences = [f"Overall verdict: {outcome}. No check had a pass mark, so nothing here "
                     "decides whether the model's explanations can be relied on."]
    elif not failed and not broken:
        sentences = [f"Overall verdict: {outcome}. All {_count(len(gated), 'check')} with a "
                     f"pass mark met it{'' if not warned else ', though some only just'}."]
    else:
        sentences = [f"Overall verdict: {outcome}. {len(failed)} of "
                     f"{_count(len(gated) + len(broken), 'check')} with a pass mark did not "
                     "meet it" + (f" and {len(broken)} could not be completed"
                                  if broken else "") + "."]
    sentences += [f"“{c.name}” failed: {_measured(c)}; this means {_means(c, meanings)}."
                  for c in failed]
    sentences += [f"“{c.name}” passed with a warning: {_measured(c)}; if it worsens, "
                  f"{_means(c, meanings)}." for c in warned]
    sentences += [f"“{c.name}” could not be completed ({c.error.type if c.error else 'error'})"
                  ", so what it tests is unknown." for c in broken]
    return " ".join(sentences)


def _meaning(result: AuditResult) -> str:
    failed = any(c.status in ("fail", "error") for c in result.checks)
    if failed:
        passed = any(c.status in ("pass", "warn") for c in result.checks)
        return ("What it means: until the failed checks are resolved, the explanations, and "
                "the reasons for decisions built on them, should not be relied on for what "
                "those checks cover." + (" The checks that passed still hold for what they "
                                         "test." if passed else ""))
    if any(c.status in ("pass", "warn") for c in result.checks):
        return ("What it means: as far as these checks go, the explanations describe what the "
                "model does and can be used to understand and question its outputs. The checks "
                "test the explanations; they do not show that the model's decisions are "
                "correct or fair beyond the performance figures reported.")
    return ""


def _caveats(result: AuditResult, found: Reconciled) -> str:
    caveats = []
    crashed = [key for key, _ in errors(result)]
    if crashed:
        whose = "its" if len(crashed) == 1 else "their"
        caveats.append(f"{_join(crashed)} failed to run, so {whose} explanations are missing")
    not_gated = [c for c in result.checks if c.status == "not_gated"]
    if not_gated:
        caveats.append(f"{_count(len(not_gated), 'check')} measured values without a pass mark "
                       f"({_join(c.name for c in not_gated)}), which a reader must judge")
    n = _rows(result)
    if 0 < n < FEW_SUBJECTS:
        caveats.append(f"only {_count(n, 'subject')} {'was' if n == 1 else 'were'} explained, "
                       "so averages and group figures are uncertain")
    if found.not_applicable is None and found.subjects:
        if found.withheld:
            caveats.append(f"for {_count(found.withheld, 'adverse decision')}, some reasons "
                           "were withheld because the method giving them was not reliable "
                           "enough for that person, or the factor is forbidden")
        if found.flagged:
            caveats.append(f"for {_count(found.flagged, 'adverse decision')} of "
                           f"{len(found.subjects)}, the other explanation methods do not "
                           f"support every reason {found.primary} gives")
        undocumented = sum(not r.coded for s in found.subjects for r in s.reasons)
        if undocumented:
            caveats.append(f"{_count(undocumented, 'reason')} issued "
                           f"{'has' if undocumented == 1 else 'have'} no documented statement "
                           "for the direction of the person's value")
    caveats.append("explanations describe how the model uses its inputs, not causes in the "
                   "world")
    return "Main caveats: " + "; ".join(caveats) + "."


def _decide(result: AuditResult, documentation: DocumentationSpec | None,
            found: Reconciled) -> str:
    status = documentation.status if documentation is not None else "draft"
    approver = documentation.approved_by if documentation is not None else None
    items = []
    if status == "approved" and approver is not None:
        items.append(f"confirm the approval recorded for {approver.name}"
                     f"{' (' + approver.role + ')' if approver.role else ''}")
    else:
        items.append(f"sign off the audit (its status is {status})")
    if any(c.threshold is not None for c in result.checks):
        items.append("whether the pass marks set in the suite are strict enough for the "
                     "intended use")
    if found.flagged or found.withheld:
        items.append("how to handle the adverse decisions whose reasons are flagged or "
                     "withheld")
    items.append("whether the model is fit for its intended use, which no automated check "
                 "decides")
    return "The reviewer must still decide: " + "; ".join(items) + "."


def _measured(c: CheckResult) -> str:
    value = "no value" if c.value is None else f"{c.value:.3g}"
    if c.threshold is None:
        return f"it measured {value}"
    bound = "at most" if c.direction == "lower" else "at least"
    return f"it measured {value} where {bound} {c.threshold:g} is required"


def _means(c: CheckResult, meanings: Mapping[str, str]) -> str:
    if c.check in FAILURE_MEANINGS:
        return FAILURE_MEANINGS[c.check]
    if c.check.startswith("performance."):
        return "the model predicts held-out cases less accurately than required"
    if c.check.startswith("drift."):
        return "the model's explanations have moved away from the approved run's"
    summary = meanings.get(c.check, "").strip().rstrip(".")
    return f"the check ({summary[:1].lower() + summary[1:]}) is not met" if summary else (
        "what the check tests is not met")


def _rows(result: AuditResult) -> int:
    rows = [e.n_rows for _, e in explanations(result)]
    return max(rows, default=0)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _join(items: Iterable[str]) -> str:
    names = list(items)
    if len(names) < 3:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
