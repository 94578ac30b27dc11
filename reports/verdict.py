"""The overall verdict of an audit, in words, as every output states it."""

from __future__ import annotations

from ..results import AuditResult
from ..verdict import VERDICTS


def verdict(result: AuditResult) -> str:
    """``PASSED``, ``FAILED``, ``CRASHED`` or ``NO GATES EVALUATED``: the exit code under the
    result's recorded gate policy (:mod:`xaudit.verdict`), in words."""
    return VERDICTS[result.exit_code()]
