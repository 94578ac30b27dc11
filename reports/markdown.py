"""``summary.md``: a Markdown digest fit for a CI step summary (e.g. ``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

import re

from ..results import AuditResult
from ..safe_text import one_line
from .analysis import errors, explanations
from .verdict import VERDICTS

SUMMARY_FILE = "summary.md"
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
    """The summary: verdict, gates table, explainers, and the hashes that identify the run."""
    code = result.exit_code()
    verdict = VERDICTS[code]
    lines = [
        f"# xaudit: {md_escape(result.suite_name)}: {verdict}",
        "",
        f"Model {md_code(result.model.get('name', '?'))} "
        f"({md_escape(result.model.get('adapter', '?'))}), data "
        f"{md_code(result.data.get('source', '?'))}, exit code {int(code)}.",
        "",
        "| check | explainer | value | gate | verdict |",
        "|---|---|---|---|---|",
    ]
    for check in result.checks:
        relation = "<=" if check.direction == "lower" else ">="
        gate = "-" if check.threshold is None else f"{relation} {check.threshold:g}"
        value = "-" if check.value is None else f"{check.value:.6g}"
        status = check.status.upper() if check.error is None else f"ERROR: {check.error}"
        lines.append(f"| {md_escape(check.name)} | {md_escape(check.explainer)} | {value} | "
                     f"{gate} | {md_escape(status)} |")
    lines += ["", "| explainer | method | rows | time (s) |", "|---|---|---|---|"]
    for key, explanation in explanations(result):
        lines.append(f"| {md_escape(key)} | {md_escape(explanation.method)} | "
                     f"{explanation.n_rows} | {explanation.wall_time_s:.3f} |")
    for key, error in errors(result):
        lines.append(f"| {md_escape(key)} | crashed: {md_escape(error)} | - | - |")
    hashes = result.provenance.get("hashes", {})
    lines += ["", "SHA-256: " + ", ".join(f"{md_escape(k)} {md_code(str(v)[:16])}"
                                          for k, v in sorted(hashes.items())), ""]
    return "\n".join(lines)
