"""``summary.md``: a Markdown digest fit for a CI step summary (e.g. ``$GITHUB_STEP_SUMMARY``).

It states the run's verdict (under its recorded gate policy, :mod:`xaudit.verdict`), the gates,
what the checks found in plain words (their ``handoff.statements``), the top features of each
attribution explainer, the explainers (and which came from the cache), a link to the full
report and the hashes that identify the run.

The link's target is the literal placeholder :data:`REPORT_URL`: only the CI job knows where it
publishes the results folder, so it substitutes the placeholder when it shows the summary (the
GitHub action and the GitLab template in ``docs/ci.md`` do), and the file itself stays as
written (its SHA-256 is in ``manifest.json``).
"""

from __future__ import annotations

import re

from ..feature_shares import approved_shares, feature_shares
from ..results import AuditResult
from ..safe_text import one_line
from ..verdict import policy_note
from .analysis import errors, explanations
from .verdict import verdict

SUMMARY_FILE = "summary.md"
REPORT_URL = "{{REPORT_URL}}"
"""The placeholder ``summary.md`` links the full report to; CI replaces it with a URL."""
TOP_FEATURES = 5
"""Features named per explainer in the summary's top-features list."""
_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(text: object) -> str:
    """``text`` on one line, its Markdown and HTML metacharacters escaped and its control and
    bidirectional characters shown as escapes (:func:`~xaudit.safe_text.one_line`)."""
    return _SPECIAL.sub(r"\\\1", one_line(text))


def md_code(text: object) -> str:
    """``text`` on one line as a Markdown code span (shown literally): fenced by one backtick
    more than its longest run of backticks, padded when it starts or ends with one."""
    line = one_line(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", line)), default=0) + 1)
    pad = " " if line.startswith("`") or line.endswith("`") else ""
    return f"{fence}{pad}{line}{pad}{fence}"


def summary_markdown(result: AuditResult) -> str:
    """The summary: verdict, gates, findings, top features, explainers, report link, hashes."""
    code = result.exit_code()
    policy = " Warnings fail this run (gate_policy.fail_on_warn)." if (
        result.gate_policy.fail_on_warn) else ""
    lines = [
        f"# xaudit: {md_escape(result.suite_name)}: {verdict(result)}",
        "",
        f"Model {md_code(result.model.get('name', '?'))} "
        f"({md_escape(result.model.get('adapter', '?'))}), data "
        f"{md_code(result.data.get('source', '?'))}, exit code {int(code)}.{policy}",
        "",
        f"Full report and results: [report.html, report.pdf, results.json]({REPORT_URL})",
        "",
        "| check | explainer | value | gate | verdict |",
        "|---|---|---|---|---|",
    ]
    for check in result.checks:
        relation = "<=" if check.direction == "lower" else ">="
        gate = "-" if check.threshold is None else f"{relation} {check.threshold:g}"
        if check.threshold is not None and check.warn_threshold is not None:
            gate += f", warns beyond {check.warn_threshold:g}"
        value = "-" if check.value is None else f"{check.value:.6g}"
        status = check.status.upper() if check.error is None else f"ERROR: {check.error}"
        note = policy_note(check.status, result.gate_policy)
        status += f" ({note})" if note else ""
        lines.append(f"| {md_escape(check.name)} | {md_escape(check.explainer)} | {value} | "
                     f"{gate} | {md_escape(status)} |")
    lines += _findings(result) + _top_features(result)
    hits = {k for k, v in result.provenance.get("cache", {}).get("explainers", {}).items()
            if v.get("hit")}
    lines += ["", "| explainer | method | rows | time (s) |", "|---|---|---|---|"]
    for key, explanation in explanations(result):
        time = f"{explanation.wall_time_s:.3f}"
        time = f"from the cache (computed in {time})" if key in hits else time
        lines.append(f"| {md_escape(key)} | {md_escape(explanation.method)} | "
                     f"{explanation.n_rows} | {time} |")
    for key, error in errors(result):
        lines.append(f"| {md_escape(key)} | crashed: {md_escape(error)} | - | - |")
    hashes = result.provenance.get("hashes", {})
    lines += ["", "SHA-256: " + ", ".join(f"{md_escape(k)} {md_code(str(v)[:16])}"
                                          for k, v in sorted(hashes.items())), ""]
    return "\n".join(lines)


def _findings(result: AuditResult) -> list[str]:
    """What the checks found in plain words (``handoff.statements``); nothing when none did."""
    found = [f"- **{md_escape(check.name)}** ({check.status.upper()}): {md_escape(sentence)}"
             for check in result.checks for sentence in check.handoff.statements]
    return ["", "## Findings", "", *found] if found else []


def _top_features(result: AuditResult) -> list[str]:
    """Per tabular attribution explainer, the features holding the largest shares of mean
    |attribution| (summed over outputs), each with its change against the approved run when the
    run had a baseline that ran the same method; nothing when no explainer attributes named
    features."""
    approved = approved_shares(result)
    lines = []
    for key, explanation in explanations(result):
        shares = feature_shares(explanation)
        if shares is None:
            continue
        before = approved.get(key, {}).get(explanation.method)
        top = sorted(shares, key=lambda name: -shares[name])[:TOP_FEATURES]  # ties: in order
        named = ", ".join(f"{md_escape(name)} {100 * shares[name]:.0f}%"
                          f"{_change(shares[name], before, name)}" for name in top)
        lines.append(f"- {md_escape(key)}: {named}")
    if not lines:
        return []
    heading = "## Top features (share of mean |attribution|"
    heading += "; change against the approved run)" if approved else ")"
    return ["", heading, "", *lines]


def _change(share: float, before: dict[str, float] | None, name: str) -> str:
    """`` (+20 points; 33% in the approved run)``, or that the feature was absent there."""
    if before is None:
        return ""
    if name not in before:
        return " (absent in the approved run)"
    points = 100 * (share - before[name])
    return f" ({points:+.0f} points; {100 * before[name]:.0f}% in the approved run)"
