"""The verdict policy: one rule turns check statuses into the run's exit code and verdict.

Every output states the verdict this module decides (the exit code, ``results.json``,
``summary.md``, ``junit.xml``, the HTML report and the PDF cover), because the policy that
decides it (:class:`GatePolicy`) is recorded with the result: ``xaudit report`` re-renders a
saved folder with the same verdict ``xaudit run`` exited with.

The policy follows pytest's ``-W error`` idea: a warning is a finding that passes by default,
and a policy can promote it to a failure. ``gate_policy.fail_on_warn`` (or
``xaudit run --fail-on-warn``) makes every warned gate fail the run; the check keeps its own
status ``warn`` (what it measured), and the outputs say that it failed the run.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from .exitcodes import ExitCode

VERDICTS = {
    ExitCode.OK: "PASSED", ExitCode.GATE_FAILED: "FAILED", ExitCode.CRASHED: "CRASHED",
    ExitCode.NO_GATES: "NO GATES EVALUATED", ExitCode.INVALID: "INVALID",
}
"""The verdict in words, for each exit code."""


class GatePolicy(BaseModel):
    """How gate statuses decide the run (the suite's ``gate_policy`` block)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fail_on_warn: bool = False
    """A gate that warns fails the run (exit 1); ``xaudit run --fail-on-warn`` sets it."""


def fails_run(status: str, policy: GatePolicy) -> bool:
    """Whether a check with ``status`` fails the run under ``policy``."""
    return status == "fail" or (status == "warn" and policy.fail_on_warn)


def decide(statuses: Iterable[str], crashed: bool, policy: GatePolicy) -> ExitCode:
    """The exit code: a crash (3) before a failed gate (1) before no gate evaluated (5).

    ``statuses`` are the checks' statuses (``pass``, ``fail``, ``warn``, ``error``,
    ``not_gated``); ``crashed`` says whether an explainer crashed.
    """
    statuses = list(statuses)
    if crashed or "error" in statuses:
        return ExitCode.CRASHED
    if any(fails_run(s, policy) for s in statuses):
        return ExitCode.GATE_FAILED
    if not any(s in ("pass", "warn") for s in statuses):
        return ExitCode.NO_GATES
    return ExitCode.OK


def policy_note(status: str, policy: GatePolicy) -> str:
    """``"fails the run (gate_policy.fail_on_warn)"`` for a warning the policy turns into a
    failure, else ``""``: what every output appends to such a check's status."""
    if status == "warn" and fails_run(status, policy):
        return "fails the run (gate_policy.fail_on_warn)"
    return ""
