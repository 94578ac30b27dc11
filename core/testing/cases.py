"""What every kit shares: a case bound to its subject, skips and opt-outs, the kit's host, and
``parametrize``-style helpers.

A kit (explainers, checks, report sections, adapters) is a tuple of :class:`CaseSpec` and a
subject it checks them on. Binding them gives :class:`Case` objects, which unpack as
``(name, run)`` pairs (as ``explainer_checks`` always returned) and can be called themselves.
Nothing is computed when cases are made, so a malformed plugin class or a missing fixture
fails the cases that need them, one by one, and never the collection of a test module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, NamedTuple, NoReturn, TypeVar

from ..hookspecs import hookimpl
from ..host import Host, create_host
from ..plugin import Adapter, Check, Explainer, ReportSection

S = TypeVar("S")


class Case(NamedTuple):
    """One conformance case bound to its subject: call it (or its ``run``) to run it.

    It unpacks as ``(name, run)``; ``run.__name__`` is the subject's label, so
    ``@pytest.mark.parametrize("name, run", explainer_checks(cls))`` reads
    ``[values_follow_the_result_schema-on_linear]``. The ``parametrize_*_checks`` helpers
    of :mod:`xaudit.testing` give ``[values_follow_the_result_schema]``.
    """

    name: str
    run: Callable[[], None]

    def __call__(self) -> None:
        """Run the case: ``AssertionError`` when the contract is broken, a skip when the case
        does not apply (or the class opts out of it, with its reason)."""
        self.run()


@dataclass(frozen=True)
class CaseSpec(Generic[S]):
    """One part of a plugin contract: ``check(subject)`` raises ``AssertionError`` if broken."""

    name: str
    check: Callable[[S], None]
    doc: str = ""
    """What the case asserts, for the documentation's table."""


def skip(reason: str) -> NoReturn:
    """Skip the running case, with ``reason`` (pytest's skip)."""
    import pytest

    pytest.skip(reason)


def bind(specs: Sequence[CaseSpec[S]], subject: S, label: str,
         opt_outs: Mapping[str, str] | None = None, who: str = "") -> list[Case]:
    """Each spec bound to ``subject``; a case named in ``opt_outs`` skips with its reason."""
    cases = []
    for spec in specs:
        reason = (opt_outs or {}).get(spec.name)
        run = _skipper(f"{who} opts out of {spec.name}: {reason}") if reason else _runner(
            spec, subject)
        run.__name__ = label
        run.__qualname__ = f"{spec.name}[{label}]"
        cases.append(Case(spec.name, run))
    return cases


def _runner(spec: CaseSpec[S], subject: S) -> Callable[[], None]:
    def run() -> None:
        spec.check(subject)

    return run


def _skipper(reason: str) -> Callable[[], None]:
    def run() -> None:
        skip(reason)

    return run


def opt_out_problems(cls: type, specs: Sequence[CaseSpec[Any]]) -> list[str]:
    """What is wrong with ``cls.conformance_opt_outs``: cases the kit does not have, and
    opt-outs without a reason."""
    opt_outs = dict(getattr(cls, "conformance_opt_outs", {}) or {})
    names = {spec.name for spec in specs}
    problems = []
    unknown = sorted(set(opt_outs) - names)
    if unknown:
        problems.append(f"{cls.__name__}.conformance_opt_outs names no kit case: "
                        f"{', '.join(unknown)}; the cases are {', '.join(sorted(names))}")
    blank = sorted(name for name, reason in opt_outs.items()
                   if not isinstance(reason, str) or not reason.strip())
    if blank:
        problems.append(f"{cls.__name__}.conformance_opt_outs gives no reason for "
                        f"{', '.join(blank)}")
    return problems


def valid_opt_outs(cls: type, specs: Sequence[CaseSpec[Any]]) -> dict[str, str]:
    """The opt-outs of ``cls`` that name a case and give a reason (the others are reported
    by the ``class_is_well_formed`` case and ignored)."""
    names = {spec.name for spec in specs}
    return {name: reason for name, reason in dict(getattr(cls, "conformance_opt_outs", {})
                                                   or {}).items()
            if name in names and isinstance(reason, str) and reason.strip()}


_HOOKS: dict[type, str] = {
    Adapter: "adapters", Explainer: "explainers", Check: "checks",
    ReportSection: "report_sections",
}


class KitPlugin:
    """The plugin the kit registers classes with, named after the first (so messages say
    ``plugin 'mypkg.MyExplainer'``, never an object's address)."""

    def __init__(self, *classes: type) -> None:
        self.classes = classes
        self.__name__ = f"{classes[0].__module__}.{classes[0].__qualname__}"

    def _add(self, registry: Any, base: type) -> None:
        for cls in self.classes:
            if isinstance(cls, type) and issubclass(cls, base):
                registry.add(cls)

    @hookimpl
    def xaudit_register_adapters(self, registry: Any) -> None:
        """Register the adapters among the classes."""
        self._add(registry, Adapter)

    @hookimpl
    def xaudit_register_explainers(self, registry: Any) -> None:
        """Register the explainers among the classes."""
        self._add(registry, Explainer)

    @hookimpl
    def xaudit_register_checks(self, registry: Any) -> None:
        """Register the checks among the classes."""
        self._add(registry, Check)

    @hookimpl
    def xaudit_register_report_sections(self, registry: Any) -> None:
        """Register the report sections among the classes."""
        self._add(registry, ReportSection)


@cache
def host_with(*classes: type) -> Host:
    """A host with the built-ins and ``classes`` registered (no entry points: the developer's
    installed plugins cannot change what the kit sees); built once per set of classes. A
    class the built-ins already register is not registered twice."""
    host = create_host(autoload=False)
    missing = tuple(cls for cls in classes if not _registered(host, cls))
    return create_host(plugins=[KitPlugin(*missing)], autoload=False) if missing else host


def _registered(host: Host, cls: type) -> bool:
    for base, kind in _HOOKS.items():
        if isinstance(cls, type) and issubclass(cls, base):
            registry = getattr(host, kind)
            name = getattr(cls, "name", None)
            return name in registry and registry.get(name) is cls
    return False


def parametrize(cases: Sequence[Case]) -> list[Any]:
    """``pytest.param(case, id=case.name)`` for each case: one argument, readable ids."""
    import pytest

    return [pytest.param(case, id=case.name) for case in cases]
