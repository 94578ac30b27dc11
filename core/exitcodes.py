"""Process exit codes, following pytest's convention that CI users already know."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit status of ``xaudit run`` and friends."""

    OK = 0
    """Every gate passed."""
    GATE_FAILED = 1
    """At least one gate failed (or warned, under ``--fail-on-warn``)."""
    INTERRUPTED = 2
    """Interrupted (SIGINT, SIGTERM) before its output was complete: nothing was published."""
    CRASHED = 3
    """An explainer or check raised; the rest still ran and results were written."""
    INVALID = 4
    """Invalid suite, inputs or usage: nothing was run."""
    NO_GATES = 5
    """Nothing failed, but no gate was evaluated."""
