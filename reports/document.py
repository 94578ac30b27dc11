"""Assemble the report: every registered section, in order, into one self-contained HTML page.

The same page is written as ``report.html`` and laid out by WeasyPrint as ``report.pdf`` (its
print style sheet gives the running header, page numbers and the table of contents' page
numbers). A section whose ``context`` or template raises is shown with its error, listed in
:attr:`RenderedPage.failed` and logged as a warning on the ``xaudit`` logger, so it never passes
silently; the rest of the report still renders. A page template (``report.html.j2``) that
fails raises :class:`~xaudit.errors.InputError` naming it.
"""

from __future__ import annotations

import logging
import re
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, TemplateError
from markupsafe import Markup

from ..errors import InputError
from ..plugin import ReportSection
from ..results import AuditResult
from ..safe_text import one_line
from ..version import __version__
from .embedding import Embedded, report_id, results_file, run_time
from .fonts import font_faces
from .options import ReportOptions, documentation_of
from .section_base import NOT_APPLICABLE, ContextualSection, RenderContext
from .templating import STATIC, build_environment, plugin_template_dirs
from .verdict import verdict

if TYPE_CHECKING:
    from ..host import Host

FONTS_PLACEHOLDER = "/*xaudit:font-faces*/"
PAGE_TEMPLATE = "report.html.j2"
LOGGER = logging.getLogger("xaudit")


@dataclass
class SectionView:
    """One section as the page template lays it out."""

    name: str
    title: str
    anchor: str
    number: int
    origin: str
    context: dict[str, Any]
    body: Markup = field(default_factory=Markup)
    error: str | None = None

    @property
    def reason(self) -> str | None:
        """Why the section has nothing to show, or ``None``."""
        value = self.context.get(NOT_APPLICABLE)
        return None if value is None else str(value)

    @property
    def applicable(self) -> bool:
        """Whether the section shows content for this audit."""
        return self.reason is None and self.error is None


@dataclass(frozen=True)
class RenderedPage:
    """The report page, and the sections that failed on it (each shown there with its error)."""

    html: str
    failed: tuple[str, ...] = ()
    """One line per failed section: its name, the plugin that registered it, the error."""


def render_html(result: AuditResult, options: ReportOptions, host: Host | None,
                results: Embedded) -> RenderedPage:
    """The report page for ``result``; ``results`` is the ``results.json`` it presents."""
    classes = _section_classes(host)
    env = build_environment(options.template_dir, plugin_template_dirs(c for _, c in classes))
    documentation = documentation_of(result)
    context = RenderContext(result, options, documentation, host, results.sha256,
                            report_id(results.sha256))
    views, report = render_sections(classes, result, context, env, host)
    try:
        page = env.get_template(PAGE_TEMPLATE).render(
            report=report, sections=views,
            css=Markup((STATIC / "report.css").read_text()),  # noqa: S704
            font_faces=Markup(FONTS_PLACEHOLDER))  # noqa: S704
    except TemplateError as exc:
        raise InputError(f"the report page template {PAGE_TEMPLATE} failed: "
                         f"{_error_text(exc)}") from None
    failed = tuple(one_line(f"section {v.name!r} ({_plugin(host, v.name)}): {v.error}")
                   for v in views if v.error is not None)
    return RenderedPage(page.replace(FONTS_PLACEHOLDER, font_faces(page), 1), failed)


def render_sections(classes: list[tuple[str, type[ReportSection]]], result: AuditResult,
                    context: RenderContext, env: Environment, host: Host | None,
                    ) -> tuple[list[SectionView], dict[str, Any]]:
    """The applicable sections' views with their bodies rendered, and the page's metadata.

    A section whose ``context`` or template raises keeps the error in its view."""
    views = _contexts(classes, result, context, host)
    report = _report_meta(result, context, views)
    for view in views:
        if view.applicable:
            view.body = _render_section(env, classes_by_name(classes)[view.name], view, report)
        if view.error is not None:
            LOGGER.warning("xaudit: warning: report section %r (%s) failed to render: %s",
                           one_line(view.title), view.name, one_line(view.error))
    return views, report


def render_section(cls: type[ReportSection], result: AuditResult,
                   options: ReportOptions | None = None,
                   host: Host | None = None) -> SectionView | None:
    """One section of the report of ``result`` as the page would show it (its template found
    as for a registered section), or ``None`` when it does not apply to this audit."""
    options = options or ReportOptions()
    env = build_environment(options.template_dir, plugin_template_dirs([cls]))
    results = results_file(result)
    context = RenderContext(result, options, documentation_of(result), host, results.sha256,
                            report_id(results.sha256))
    views, _ = render_sections([(cls.name, cls)], result, context, env, host)
    return views[0] if views else None


def classes_by_name(classes: list[tuple[str, type[ReportSection]]]) -> dict[
        str, type[ReportSection]]:
    """Section classes by registered name."""
    return dict(classes)


def _section_classes(host: Host | None) -> list[tuple[str, type[ReportSection]]]:
    if host is None:
        from .builtin_sections import SECTIONS

        items = [(cls.name, cls) for cls in SECTIONS]
    else:
        items = host.report_sections.items()
    return sorted(items, key=lambda item: (item[1].order, item[0]))


def _origin(host: Host | None, name: str) -> str:
    if host is None or name not in host.report_sections:
        return "xaudit"
    return host.report_sections.origin(name).name


def _plugin(host: Host | None, name: str) -> str:
    if host is None or name not in host.report_sections:
        return "a built-in section"
    return str(host.report_sections.origin(name))


def _contexts(classes: list[tuple[str, type[ReportSection]]], result: AuditResult,
              context: RenderContext, host: Host | None) -> list[SectionView]:
    views: list[SectionView] = []
    for name, cls in classes:
        error = None
        try:
            section = cls()
            if isinstance(section, ContextualSection):
                section.bind(context)
            found = section.context(result)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # an exit (sys.exit) too: shown as the section's error
            found, error = {}, _error_text(exc)
        if found is None and error is None:
            continue  # the section does not apply to this kind of audit
        views.append(SectionView(name, cls.title, "sec-" + re.sub(r"[^a-z0-9]+", "-", name),
                                 len(views) + 1, _origin(host, name), found or {}, error=error))
    return views


def _render_section(env: Environment, cls: type[ReportSection], view: SectionView,
                    report: dict[str, Any]) -> Markup:
    try:
        text = env.get_template(cls.template).render(ctx=view.context, section=view,
                                                     report=report)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # an exit (sys.exit) too
        view.error = _error_text(exc)
        return Markup("")
    return Markup(text)  # noqa: S704 - rendered by the autoescaping environment


def _error_text(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _report_meta(result: AuditResult, context: RenderContext,
                 views: list[SectionView]) -> dict[str, Any]:
    doc = context.documentation
    when = run_time(result).strftime("%Y-%m-%dT%H:%M:%SZ")
    model = str(result.model.get("name", "model"))
    authors = [p.name for p in (doc.prepared_by,) if doc and p] if doc else []
    if doc and doc.owner and not authors:
        authors = [doc.owner]
    methods = sorted({e.method for e in result.explanations.values()})
    return {
        "title": f"Model audit report: {result.suite_name}",
        "suite_name": result.suite_name,
        "model_name": model,
        "authors": authors or ["xaudit"],
        "subject": (f"Explainability audit of {model}: {verdict(result)}. "
                    f"{result.suite.get('description', '')}").strip(),
        "keywords": ", ".join(["model audit", "explainability", "xaudit", result.suite_name,
                               model, *methods]),
        "created": when,
        "generator": f"xaudit {__version__}",
        "lang": "en",
        "verdict": verdict(result),
        "report_id": context.report_id,
        "results_sha256": context.results_sha256,
        "status": doc.status if doc else "draft",
        "sections": {v.name: v for v in views},
    }
