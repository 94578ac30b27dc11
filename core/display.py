"""What a notebook shows for an explanation, a check result and an audit result.

Jupyter calls ``_repr_html_`` on the last value of a cell; :class:`~xaudit.Explanation`,
:class:`~xaudit.CheckResult` and :class:`~xaudit.AuditResult` answer with the HTML built here,
from the report's own Jinja2 environment (:func:`xaudit.reports.templating.build_environment`:
autoescaping, the report's number filters), so every string that comes from data, a model or
a plugin is escaped exactly as in ``report.html``, in the same sandbox: templates call no
method of a result (numbers such as the mean base value are computed here). The figures are
small inline SVGs drawn by the templates, without matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .auto import CHOICE_KEY
from .host import Host, default_host

if TYPE_CHECKING:
    from jinja2 import Environment

    from .explanation import Explanation
    from .results import AuditResult, CheckResult

TOP_FEATURES = 10
"""Features shown by name, most important first, in an explanation's display."""
STATUS_COLOURS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "error": "#cf222e",
                  "not_gated": "#57606a"}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Imported here: the reports package imports the results module, which imports this one;
    # and jinja2 is needed only when a notebook displays something, not by a CI run.
    from .reports.templating import build_environment

    return build_environment(None, ())


def _render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(colours=STATUS_COLOURS, **context)


def global_importance(explanation: Explanation) -> list[tuple[str, float]]:
    """Each feature's mean |attribution| over rows and output slots, largest first."""
    n, k = explanation.n_rows, explanation.values.shape[-1]
    flat = np.abs(explanation.values.reshape(n, -1, k)).mean(axis=(0, 2))
    names = explanation.feature_names or tuple(f"x{i}" for i in range(flat.size))
    order = np.argsort(-flat, kind="stable")
    return [(str(names[i]), float(flat[i])) for i in order]


def explanation_html(explanation: Explanation) -> str:
    """Method, shape, seed, how the method was chosen, and the top features' mean
    |attribution| as a table with an inline SVG bar chart."""
    ranked = global_importance(explanation)
    top = ranked[:TOP_FEATURES]
    largest = max((value for _, value in top), default=0.0) or 1.0
    return _render(
        "notebook_explanation.html.j2", e=explanation, top=top, rest=len(ranked) - len(top),
        largest=largest, choice=explanation.metadata.get(CHOICE_KEY),
        mean_base=None if explanation.base_values is None else float(
            np.mean(explanation.base_values)),
        shape=" × ".join(str(s) for s in explanation.values.shape))


def check_description(name: str, host: Host | None = None) -> str:
    """The declared description of the check ``name`` (empty when not registered)."""
    registry = (host or default_host()).checks
    return registry.get(name).description if name in registry else ""


def check_html(result: CheckResult, host: Host | None = None) -> str:
    """Value, gate, verdict and the check's declared description (what it measures)."""
    return _render("notebook_check.html.j2", c=result,
                   description=check_description(result.check, host))


def audit_html(result: AuditResult, files: Sequence[Path] = ()) -> str:
    """The verdict, the counts, one line per check, crashed explainers and links to the
    written files."""
    return _render("notebook_audit.html.j2", a=result, code=result.exit_code(),
                   counts=result.counts(), files=[str(path) for path in files])
