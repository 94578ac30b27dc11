"""Conformance kits for plugin authors: xaudit's contract for every plugin kind, case by case.

One line per class in a plugin's tests, in the style of scikit-learn's
``parametrize_with_checks``::

    import pytest
    from xaudit.testing import parametrize_check_checks, parametrize_explainer_checks

    @pytest.mark.parametrize("case", parametrize_explainer_checks(MyExplainer))
    def test_explainer_conforms(case):
        case()          # test ids read test_explainer_conforms[values_follow_the_result_schema]

    @pytest.mark.parametrize("case", parametrize_check_checks(MyCheck))
    def test_check_conforms(case):
        case()

The kits: :func:`explainer_checks` (:data:`EXPLAINER_CASES`), :func:`check_checks`
(:data:`CHECK_CASES`), :func:`section_checks` (:data:`SECTION_CASES`) and
:func:`adapter_checks` (:data:`ADAPTER_CASES`). Each returns :class:`Case` objects, which
unpack as ``(name, run)``; nothing runs until a case is called, so a malformed class fails its
cases one by one and never the collection of the test module. A case that cannot apply is
skipped with the reason; a class opts out of a case with ``conformance_opt_outs = {case:
reason}``. The fixtures (:mod:`xaudit.testing.fixtures`), sample results
(:func:`sample_result`) and the pytest plugin (:mod:`xaudit.testing.pytest_plugin`, loaded by
pytest through the ``pytest11`` entry point) are documented in ``docs/plugins/testing.md``.
"""

from __future__ import annotations

from typing import Any

from ..plugin import Adapter, Check, Explainer, ReportSection, class_problems
from .adapters import ADAPTER_CASES, adapter_checks
from .cases import Case, CaseSpec, parametrize
from .checks import CHECK_CASES, check_checks
from .explainers import EXPLAINER_CASES, ExplainerCase, explainer_checks
from .fixtures import Fixture, fixture_for, fixtures_for, linear_fixture
from .samples import HOSTILE, sample_result
from .sections import SECTION_CASES, section_checks

__all__ = [
    "ADAPTER_CASES", "CHECK_CASES", "EXPLAINER_CASES", "HOSTILE", "SECTION_CASES", "Case",
    "CaseSpec", "ConformanceCase", "ExplainerCase", "Fixture", "adapter_checks",
    "check_checks", "check_is_well_formed", "explainer_checks", "fixture_for", "fixtures_for",
    "linear_fixture", "parametrize_adapter_checks", "parametrize_check_checks",
    "parametrize_explainer_checks", "parametrize_section_checks", "sample_result",
    "section_checks",
]

ConformanceCase = Case
"""The former name of :class:`Case` (a ``(name, run)`` pair)."""


def parametrize_explainer_checks(cls: type[Explainer], *args: Any, **kwargs: Any) -> list[Any]:
    """:func:`explainer_checks` as ``pytest.param(case, id=name)``: one argument per test."""
    return parametrize(explainer_checks(cls, *args, **kwargs))


def parametrize_check_checks(cls: type[Check], *args: Any, **kwargs: Any) -> list[Any]:
    """:func:`check_checks` as ``pytest.param(case, id=name)``."""
    return parametrize(check_checks(cls, *args, **kwargs))


def parametrize_section_checks(cls: type[ReportSection], *args: Any,
                               **kwargs: Any) -> list[Any]:
    """:func:`section_checks` as ``pytest.param(case, id=name)``."""
    return parametrize(section_checks(cls, *args, **kwargs))


def parametrize_adapter_checks(cls: type[Adapter], obj: object, *args: Any,
                               **kwargs: Any) -> list[Any]:
    """:func:`adapter_checks` as ``pytest.param(case, id=name)``."""
    return parametrize(adapter_checks(cls, obj, *args, **kwargs))


def check_is_well_formed(cls: type[Check]) -> None:
    """Raise ``AssertionError`` if ``cls`` would be refused by the check registry (the
    ``class_is_well_formed`` case of :func:`check_checks`, which checks much more)."""
    problems = class_problems(cls, Check)
    assert not problems, "; ".join(problems)
