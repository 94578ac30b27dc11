"""The overall verdict of an audit, in words, as every output states it."""

from __future__ import annotations

from ..exitcodes import ExitCode
from ..results import AuditResult

VERDICTS = {
    ExitCode.OK: "PASSED", ExitCode.GATE_FAILED: "FAILED", ExitCode.CRASHED: "CRASHED",
    ExitCode.NO_GATES: "NO GATES EVALUATED", ExitCode.INVALID: "INVALID",
}


def verdict(result: AuditResult) -> str:
    """``PASSED``, ``FAILED``, ``CRASHED`` or ``NO GATES EVALUATED``, from the exit code."""
    return VERDICTS[result.exit_code()]
