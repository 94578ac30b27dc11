"""xaudit-plugin-example: an explainer, a check and a report section for xaudit.

The module is the plugin: ``pyproject.toml`` points the ``xaudit`` entry-point group at it, and
xaudit calls the functions below, marked ``@hookimpl`` and named after xaudit's hooks, to
register the classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xaudit import hookimpl

from .check import Sparsity, gini_index
from .explainer import GradientFreeSensitivity
from .section import SparsitySection

if TYPE_CHECKING:
    from xaudit import Check, Explainer, ReportSection
    from xaudit.registry import Registry

__version__ = "0.1.0"
__all__ = ["GradientFreeSensitivity", "Sparsity", "SparsitySection", "gini_index"]


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``example.gradient_free_sensitivity``."""
    registry.add(GradientFreeSensitivity)


@hookimpl
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register ``example.sparsity``."""
    registry.add(Sparsity)


@hookimpl
def xaudit_register_report_sections(registry: Registry[ReportSection]) -> None:
    """Register the ``example.sparsity_overview`` report section."""
    registry.add(SparsitySection)
