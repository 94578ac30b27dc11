"""The report-section kit: xaudit's contract for a :class:`~xaudit.plugin.ReportSection`.

A section is rendered as the report renders it (:func:`xaudit.reports.document.render_section`:
its template looked up in the plugin's ``templates/`` folder or its ``template_dir``, then the
built-in ones, in an autoescaping environment) on sample results
(:func:`~xaudit.testing.samples.sample_result`): a full one (or ``result=`` of your own, with
the data your section needs), an empty one, and one with hostile strings in every name and
message, which must come out escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from jinja2 import TemplateNotFound

from ..host import Host
from ..plugin import ReportSection, class_problems
from ..reports.document import SectionView, render_section
from ..reports.templating import BUILTIN_TEMPLATES, build_environment, plugin_template_dirs
from ..results import AuditResult
from .cases import Case, CaseSpec, bind, host_with, opt_out_problems, skip, valid_opt_outs
from .samples import make_hostile, sample_result

PAGE_TAGS = re.compile(r"<\s*(!doctype|html|head|body)\b", re.IGNORECASE)
UNESCAPED = re.compile(r"<(script|img)\b", re.IGNORECASE)


@dataclass
class SectionSubject:
    """A section class and the results it is rendered on (made on first use)."""

    cls: type[ReportSection]
    given: AuditResult | Callable[[], AuditResult] | None = None
    problems: list[str] = field(default_factory=list)

    @cached_property
    def host(self) -> Host:
        """A host with the built-ins and the section registered."""
        if self.problems:
            raise AssertionError(f"{self.cls.__name__} is malformed, so it cannot be rendered "
                                 f"(see class_is_well_formed): {'; '.join(self.problems)}")
        return host_with(self.cls)

    def render(self, result: AuditResult) -> SectionView | None:
        """The section on ``result``; an error in its context or template fails the case."""
        view = render_section(self.cls, result, host=self.host)
        if view is not None and view.error is not None:
            raise AssertionError(f"section {self.cls.name!r} failed: {view.error}")
        return view

    @cached_property
    def result(self) -> AuditResult:
        """The given result (made now, if a function was given), or the full sample."""
        given = self.given() if callable(self.given) else self.given
        return given or sample_result()

    @cached_property
    def full(self) -> SectionView | None:
        """Rendered on :attr:`result`."""
        return self.render(self.result)


def section_checks(cls: type[ReportSection],
                   result: AuditResult | Callable[[], AuditResult] | None = None) -> list[Case]:
    """The cases checking ``cls`` against the report-section contract, as ``(name, run)``
    pairs; ``result`` is an audit holding the data the section needs, or a function making it
    when a case first needs it (default: the sample with two explanations and their
    completeness checks)."""
    problems = class_problems(cls, ReportSection) + opt_out_problems(cls, SECTION_CASES)
    subject = SectionSubject(cls, result, problems)
    return bind(SECTION_CASES, subject, "on_given" if result else "on_sample",
                valid_opt_outs(cls, SECTION_CASES), getattr(cls, "name", cls.__name__))


def _class_is_well_formed(subject: SectionSubject) -> None:
    assert not subject.problems, "; ".join(subject.problems)


def _template_found(subject: SectionSubject) -> None:
    folders = plugin_template_dirs([subject.cls])
    try:
        build_environment(None, folders).get_template(subject.cls.template)
    except TemplateNotFound:
        searched = ", ".join(str(f) for f in [*folders, BUILTIN_TEMPLATES])
        raise AssertionError(
            f"template {subject.cls.template!r} of {subject.cls.__name__} is not in {searched}: "
            "put it in a templates/ folder next to the module that defines the class (and list "
            "it as package data in pyproject.toml, or a wheel ships without it), or name a "
            "folder in the class attribute template_dir") from None


def _renders_full(subject: SectionSubject) -> None:
    if subject.full is None:
        skip(f"{subject.cls.name} does not apply to this result (context returned None)")


def _renders_empty(subject: SectionSubject) -> None:
    subject.render(sample_result(empty=True))


def _only_its_body(subject: SectionSubject) -> None:
    if subject.full is None or not subject.full.applicable:
        skip(f"{subject.cls.name} shows nothing for this result")
    found = PAGE_TAGS.search(subject.full.body)
    assert found is None, (
        f"the template emits {found.group(0)!r}...: a section template emits only its body "
        "(the report wraps it in the page, with its heading and anchor)")


def _escapes(subject: SectionSubject) -> None:
    view = subject.render(make_hostile(subject.result))
    if view is None or not view.applicable:
        skip(f"{subject.cls.name} shows nothing for this result")
    found = UNESCAPED.search(view.body)
    assert found is None, (
        f"a hostile string from the results reached the page unescaped ({found.group(0)!r}): "
        "never mark data safe (|safe, Markup) in a section template or context")


SECTION_CASES: tuple[CaseSpec[SectionSubject], ...] = (
    CaseSpec("class_is_well_formed", _class_is_well_formed,
             "the registry would accept the class (string `title` and `template`)"),
    CaseSpec("template_is_found", _template_found,
             "the template is in the plugin's `templates/` folder (or `template_dir`)"),
    CaseSpec("renders_on_a_full_result", _renders_full,
             "`context` and the template render the full sample result (or yours) without "
             "an error"),
    CaseSpec("renders_on_an_empty_result", _renders_empty,
             "an audit with no explanation and no check renders too (or the section says "
             "it does not apply)"),
    CaseSpec("template_emits_only_its_body", _only_its_body,
             "no `<html>`, `<head>`, `<body>` or doctype: the report adds the page around it"),
    CaseSpec("escapes_hostile_strings", _escapes,
             "markup in every name and message of that result comes out escaped"),
)
"""The report-section contract, case by case, in the order :func:`section_checks` runs them."""
