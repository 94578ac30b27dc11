"""The built-in report sections, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..plugin import ReportSection
from ..registry import Registry
from .sections_appendix import RegulatorySection, ReproducibilitySection, SignoffSection
from .sections_checks import FaithfulnessSection
from .sections_details import DetailsSection
from .sections_fairness import FairnessSection
from .sections_global import GlobalSection, StabilitySection
from .sections_glossary import GlossarySection
from .sections_local import LocalSection
from .sections_media import MediaSection
from .sections_methods import LimitationsSection, MethodsSection
from .sections_model import DataSection, ModelSection
from .sections_overview import CoverSection, SummarySection

SECTIONS: tuple[type[ReportSection], ...] = (
    CoverSection, SummarySection, ModelSection, DataSection, MethodsSection, GlobalSection,
    LocalSection, FairnessSection, MediaSection, FaithfulnessSection, StabilitySection,
    LimitationsSection, GlossarySection, DetailsSection, ReproducibilitySection, SignoffSection,
    RegulatorySection,
)


@hookimpl
def xaudit_register_report_sections(registry: Registry[ReportSection]) -> None:
    """Register the built-in sections of the audit report."""
    for section in SECTIONS:
        registry.add(section)
