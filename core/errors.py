"""Project exceptions: every error a user can cause says what to change.

The CLI maps them onto exit codes (see :mod:`xaudit.exitcodes`): a :class:`SuiteError`,
:class:`CapabilityError`, :class:`InputError`, :class:`ModelLoadError` or :class:`OutputError`
means the inputs are invalid and nothing ran (exit 4); a :class:`WriteError` means the run's
output could not be written and nothing was published (exit 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class XauditError(Exception):
    """Base class of every error xaudit raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem in a suite: where (``explainers[2].params.n_samples``) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SuiteError(XauditError):
    """A suite (YAML or Python object) is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem], source: str = "suite") -> None:
        self.problems = tuple(problems)
        self.source = source
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source} is invalid ({len(self.problems)} problem(s)):\n{lines}")


class InputError(XauditError):
    """Data or arguments given to the API are unusable (wrong shape, unknown target, ...)."""


class AttributionError(XauditError):
    """An explainer returned attributions that cannot be used: NaN or infinite values, base
    values or standard errors. The message names the method, how many values and the first
    rows and features; the explainer (or the rows it was given), not the suite, is at fault,
    so a suite records it as a crashed explainer (exit 3) and runs the others."""


class CapabilityError(XauditError):
    """An explainer or check needs something the model does not offer."""


class ModelLoadError(XauditError):
    """A model could not be loaded or adapted (unsafe format, unknown object, wrong file)."""


class OutputError(XauditError):
    """The output folder cannot be used: an existing file, a place that cannot be written, a
    folder holding files xaudit did not write, or a folder another run is writing."""


class WriteError(XauditError):
    """Writing the output folder failed (a full disk, an I/O error); nothing was published,
    so the folder still holds the previous complete run, if there was one."""


class PluginError(XauditError):
    """A plugin is malformed or registers something invalid; the message names the plugin."""


class UnknownNameError(XauditError):
    """A method, check or adapter name is not registered; ``suggestions`` holds close names and
    ``note`` says why it may be missing (a blocked plugin)."""

    def __init__(self, kind: str, name: str, suggestions: Sequence[str], known: Sequence[str],
                 note: str = ""):
        self.kind = kind
        self.name = name
        self.suggestions = tuple(suggestions)
        hint = (
            f"did you mean {', '.join(repr(s) for s in self.suggestions)}?"
            if self.suggestions
            else f"registered: {', '.join(sorted(known)) or 'none'}"
        )
        super().__init__(f"unknown {kind} {name!r}; {hint}" + (f" {note}" if note else ""))
