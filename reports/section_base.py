"""What report sections may read beyond the result, and the base of the built-in sections.

A :class:`~xaudit.plugin.ReportSection` computes its template variables from the saved
:class:`~xaudit.results.AuditResult` alone. A section deriving from :class:`ContextualSection`
is also handed a :class:`RenderContext` before ``context`` is called: the report options, the
suite's documentation block, and the plugin host (for the summaries, descriptions, papers and
limitations that explainer and check classes declare as class attributes; never a module's
docstring). Third-party sections may derive from it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..plugin import ReportSection
from ..results import AuditResult
from .options import ReportOptions

if TYPE_CHECKING:
    from ..host import Host
    from ..suite import DocumentationSpec

NOT_APPLICABLE = "not_applicable"
"""Context key of a section that applies to this kind of audit but has nothing to show; its
value is the reason, printed instead of the section's body."""


@dataclass(frozen=True)
class RenderContext:
    """Everything a contextual section may read while the report is rendered."""

    result: AuditResult
    options: ReportOptions
    documentation: DocumentationSpec | None
    host: Host | None
    results_sha256: str
    report_id: str


@dataclass(frozen=True)
class PluginFacts:
    """What a plugin class says about itself, for the methods and checks sections."""

    summary: str = ""
    paper: str = ""
    limitations: tuple[str, ...] = ()
    plugin: str = ""
    description: str = ""
    """The class's declared ``description``: the definition paragraph."""


class ContextualSection(ReportSection):
    """A report section that also reads the :class:`RenderContext`."""

    render: RenderContext

    def bind(self, render: RenderContext) -> None:
        """Called by the renderer before :meth:`context`."""
        self.render = render

    @staticmethod
    def not_applicable(reason: str, **extra: Any) -> dict[str, Any]:
        """The context of a section with nothing to show, with the reason."""
        return {NOT_APPLICABLE: reason, **extra}

    def explainer_facts(self, method: str) -> PluginFacts:
        """Summary, paper, limitations and description of the explainer ``method``, if it is
        loaded."""
        host = self.render.host
        if host is None or method not in host.explainers:
            return PluginFacts()
        cls = host.explainers.get(method)
        return PluginFacts(cls.summary, cls.paper, tuple(cls.limitations),
                           str(host.explainers.origin(method)), cls.description)

    def check_facts(self, name: str) -> PluginFacts:
        """Summary, paper and description of the check ``name``, if it is loaded."""
        host = self.render.host
        if host is None or name not in host.checks:
            return PluginFacts()
        cls = host.checks.get(name)
        return PluginFacts(cls.summary, cls.paper, (), str(host.checks.origin(name)),
                           cls.description)
