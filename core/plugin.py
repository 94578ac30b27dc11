"""Base classes of what plugins register: adapters, explainers, checks and report sections.

A plugin registers *classes*; the host validates them on registration (see
:mod:`xaudit.registry`) and instantiates them with validated parameters. Each class declares what
it needs, so the host can negotiate before any work starts.
"""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from .capabilities import unmet
from .errors import InputError
from .handoff import CheckHandoff

if TYPE_CHECKING:
    from .data import Dataset
    from .explanation import Attribution, Explanation
    from .model import Model
    from .results import AuditResult
    from .suite import DocumentationSpec
    from .targets import TargetSelection

Direction = Literal["lower", "higher"]
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_+-]+)*$")


class PluginParams(BaseModel):
    """Base of every plugin's parameters: unknown fields are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AdapterOptions(PluginParams):
    """Options every adapter accepts; adapters extend this with their own fields."""

    security_switches: ClassVar[frozenset[str]] = frozenset({"trust"})
    """Options that allow something unsafe. A suite sets them only through their own field
    (``model.trust``), never in ``model.options``, which validation refuses to carry them."""

    trust: bool = False
    """Allow formats that can run code when loaded (pickle, joblib). Off by default."""
    task: Literal["classification", "regression", "other"] | None = None
    """Override the task the adapter infers."""
    output_names: list[str] | None = None
    """Names of the model outputs, in order."""
    categories: dict[str, list[Any]] | None = None
    """Categorical features and their categories, for models that take DataFrames with a
    categorical dtype (filled from the suite's ``data.categorical`` when not given)."""


class Adapter(ABC):
    """Turns a raw model object or a model reference into a :class:`~xaudit.model.Model`."""

    name: ClassVar[str]
    """The name suites and ``xaudit.adapt(adapter=...)`` use: lower case, dotted."""
    summary: ClassVar[str] = ""
    """One line for ``xaudit plugins``."""
    priority: ClassVar[int] = 0
    """Adapters with a higher priority are asked first when claiming an object."""
    Options: ClassVar[type[AdapterOptions]] = AdapterOptions
    """The pydantic model of the adapter's options (``extra="forbid"``), given to
    :meth:`load` validated."""
    extra: ClassVar[str | None] = None
    """The xaudit extra (``pip install 'xaudit[EXTRA]'``) this adapter needs; ``xaudit plugins``
    and ``validate`` say so when it is not installed (see :mod:`xaudit.extras`)."""

    @classmethod
    @abstractmethod
    def claims(cls, obj: object) -> bool:
        """Whether this adapter can take ``obj`` (a model object, a path or a spec string)."""

    @classmethod
    @abstractmethod
    def load(cls, obj: object, options: AdapterOptions) -> Model:
        """Adapt ``obj``; raise :class:`~xaudit.errors.ModelLoadError` if it cannot."""


class Explainer(ABC):
    """An attribution method. Subclasses implement :meth:`explain` for one method.

    The host resolves targets, derives the seed, times the call and wraps the returned
    :class:`~xaudit.explanation.Attribution` into an :class:`~xaudit.explanation.Explanation`.
    """

    name: ClassVar[str]
    """The name suites (``method:``) and ``xaudit.explain`` use: lower case, dotted, prefixed
    with the plugin's name (``mine.method``)."""
    summary: ClassVar[str] = ""
    """One line for ``xaudit plugins`` and the report's methods table."""
    description: ClassVar[str] = ""
    """The definition paragraph the report prints for this method: what it computes, in plain
    text, about this method only. The report reads this attribute and never the module's
    docstring, so a filed report changes only when the declared description does."""
    paper: ClassVar[str] = ""
    """The reference(s) the method implements, printed in the report."""
    limitations: ClassVar[tuple[str, ...]] = ()
    """Sentences printed next to the method's results in the report."""
    Params: ClassVar[type[PluginParams]] = PluginParams
    """The pydantic model of the parameters (``extra="forbid"``); the instance is
    ``self.params``."""
    requires: ClassVar[frozenset[str]] = frozenset()
    """Model capabilities needed (see :class:`~xaudit.model.Capability`)."""
    extra: ClassVar[str | None] = None
    """The xaudit extra this explainer's own code needs (see :attr:`Adapter.extra`)."""
    modalities: ClassVar[frozenset[str]] = frozenset({"tabular"})
    """Input modalities handled: ``tabular``, ``image``, ``text``, ``sequence``, ``other``."""
    needs_background: ClassVar[bool] = False
    """Refuse to run without background rows."""
    stochastic: ClassVar[bool] = False
    """The result depends on ``rng`` (checks such as ``stability`` read this)."""
    additive: ClassVar[bool] = False
    """Whether attributions sum to the output minus the base value (local accuracy)."""
    default_target: ClassVar[str] = "all"
    """The outputs explained when the suite gives no ``target``: ``"all"``, ``"predicted"``,
    an index, a name or a list."""
    finds_predicted: ClassVar[bool] = False
    """Whether :meth:`explain` accepts pending ``"predicted"`` targets
    (:attr:`~xaudit.targets.TargetSelection.pending`) and fills their indices from its own
    forward pass; the host then skips its own pass over the rows."""
    row_parallel: ClassVar[bool] = False
    """Whether each row's attribution depends on that row alone (with the model, background,
    params and random stream), so the rows may be explained in chunks, on other processes or
    machines, and joined (:mod:`xaudit.executor`): per-row arrays in ``values``,
    ``base_values``, ``std_errors``, ``extras`` and the hand-off. ``False`` (the default, and
    what global methods such as partial dependence declare): the explainer always gets all rows
    in one call, in the runner's process."""
    needs_labels: ClassVar[bool] = False
    """Whether :meth:`explain` needs the labels of the rows of ``X``: the host then passes them
    as the keyword ``y`` (an array with one label per row) and refuses to run without them.
    Explainers that leave this false are called exactly as before, without ``y``."""
    conformance_opt_outs: ClassVar[Mapping[str, str]] = {}
    """Conformance-kit cases (:data:`xaudit.testing.EXPLAINER_CASES`) that cannot apply to this
    method, each with the reason why: the kit reports them as skipped with that reason. Naming
    a case the kit does not have, or giving no reason, fails the kit's ``class_is_well_formed``
    case; opt out only where the case, not the method, is what does not fit (a global
    measurement has no per-row output slots, say)."""

    def __init__(self, params: PluginParams) -> None:
        self.params = params

    @abstractmethod
    def explain(
        self,
        model: Model,
        X: np.ndarray,
        *,
        background: np.ndarray | None,
        targets: TargetSelection,
        rng: np.random.Generator,
    ) -> Attribution:
        """Attributions for the rows of ``X`` and the targeted outputs."""


@dataclass
class CheckOutcome:
    """What a check measures: one gated ``value``, optional per-row ``values`` and details.

    ``details`` are JSON-ready facts, saved in results.json and printed as they are; what the
    report draws (curves) goes into ``handoff`` (:class:`~xaudit.handoff.CheckHandoff`).
    """

    value: float
    values: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)
    handoff: CheckHandoff = field(default_factory=CheckHandoff)


class Reexplain(Protocol):
    """Explain other rows (or another model) the way the checked explanation was made.

    Same method, parameters and background; ``target_indices`` ``(n, k)`` gives each row's
    targeted outputs (pass the original rows' indices so perturbed rows keep their targets).
    ``model`` defaults to the checked model, ``seed`` to the explanation's seed. Returns the
    values ``(n, *feature_shape, k)``.
    """

    def __call__(self, X: np.ndarray, target_indices: np.ndarray, *,
                 model: Model | None = None, seed: int | None = None) -> np.ndarray:
        """Attribution values for ``X``."""
        ...


@dataclass(frozen=True)
class Baseline:
    """The approved run's explanation that a :class:`BaselineCheck` compares with.

    ``explanation`` is the approved run's explanation by the same explainer id (read back from
    its results folder); ``rows`` gives, when both runs explained the same data (equal data
    SHA-256), the positions in the approved and in the checked explanation of the rows both
    explained, so statistics compare the same subjects; ``None`` when the data differ.
    ``feature_changes``: features present in one run only are compared as contributing nothing
    in the other (the suite's ``baseline.feature_changes: compare``); otherwise such a pair was
    refused before any work.
    """

    explanation: Explanation
    rows: tuple[np.ndarray, np.ndarray] | None = None
    feature_changes: bool = False


@dataclass
class CheckContext:
    """What :func:`xaudit.check` gives a check beyond its ``run`` arguments (set before ``run``).

    ``reexplain`` is ``None`` when the explanation's method is not registered on the host (an
    explanation read back from results.json, say); ``reference`` is the second explanation of a
    check that compares two explainers (a suite's ``checks[].reference``); ``baseline`` the
    approved run's explanation (``xaudit run --baseline``); ``documentation`` the suite's
    documentation block (decision rule, reason codes, segments), ``None`` without one.
    """

    reexplain: Reexplain | None = None
    reference: Explanation | None = None
    stochastic: bool = False
    """Whether the checked explanation's method declares itself stochastic."""
    baseline: Baseline | None = None
    documentation: DocumentationSpec | None = None


class Check(ABC):
    """A faithfulness or sanity measurement on an explanation; a suite may gate on its value."""

    name: ClassVar[str]
    """The name suites (``check:``) and ``xaudit.check`` use."""
    summary: ClassVar[str] = ""
    """One line for ``xaudit plugins`` and the report."""
    description: ClassVar[str] = ""
    """The definition paragraph the report prints for this check: what it measures and which
    way is better, in plain text, about this check only (never the module's docstring)."""
    paper: ClassVar[str] = ""
    """The reference(s) the measure comes from."""
    Params: ClassVar[type[PluginParams]] = PluginParams
    """The pydantic model of the parameters (``extra="forbid"``)."""
    direction: ClassVar[Direction]
    """Which way is better: ``"lower"`` (an error) or ``"higher"`` (a score)."""
    requires: ClassVar[frozenset[str]] = frozenset()
    """Model capabilities needed; refused before any work when missing (see :meth:`unmet`)."""
    context: CheckContext | None = None
    """Set by :func:`xaudit.check` before :meth:`run`: re-explaining and a reference explanation
    (optional; checks that only read the explanation ignore it)."""
    conformance_opt_outs: ClassVar[Mapping[str, str]] = {}
    """Check-kit cases (:data:`xaudit.testing.CHECK_CASES`) that cannot apply to this check,
    each with the reason why (a robustness measure does not prefer exact attributions, say):
    the kit skips them with that reason."""

    def __init__(self, params: PluginParams) -> None:
        self.params = params

    def unmet(self, model: Model) -> list[str]:
        """What this check, with its params, needs that ``model`` does not offer, one phrase
        each (``capability 'gradients'``); empty when it can run. The host refuses a check with
        unmet needs before any work. The default compares :attr:`requires` with the model's
        capabilities; override it for needs that depend on the params."""
        return unmet(model, self.requires)

    @abstractmethod
    def run(
        self,
        model: Model,
        explanation: Explanation,
        data: Dataset,
        rng: np.random.Generator,
    ) -> CheckOutcome:
        """Measure ``explanation`` of ``model``; ``data`` gives background and labels."""


class ModelCheck(Check):
    """A measurement of the model itself on held-out rows (its performance), not of an
    explanation: a suite names it without an ``explainer``, and :func:`xaudit.check` calls
    :meth:`measure` with the model and the suite's data (labels, train/test split)."""

    @abstractmethod
    def measure(self, model: Model, data: Dataset, rng: np.random.Generator) -> CheckOutcome:
        """Measure ``model`` on ``data`` (its test rows and labels)."""

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """:meth:`measure`; the explanation is not used."""
        return self.measure(model, data, rng)


class BaselineCheck(Check):
    """A comparison of the checked explanation with the approved run's (drift).

    A suite's baseline check is evaluated only when the run has a baseline (``xaudit run
    --baseline DIR`` or the suite's ``baseline:``), and is reported as skipped otherwise;
    ``xaudit diff`` runs every registered baseline check, with its default parameters, on the
    explainers two saved runs share. Implement :meth:`compare`; it needs no model.
    """

    @abstractmethod
    def compare(self, explanation: Explanation, baseline: Baseline) -> CheckOutcome:
        """Compare ``explanation`` with ``baseline.explanation``."""

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """:meth:`compare` with the baseline of :attr:`context`, or a clear error."""
        baseline = None if self.context is None else self.context.baseline
        if baseline is None:
            raise InputError(f"{self.name} compares with an approved run: give a baseline "
                             "(xaudit run --baseline DIR, a suite's baseline:, or "
                             "baseline=Baseline(...) in xaudit.check)")
        return self.compare(explanation, baseline)


class ReportSection(ABC):
    """A section of the audit report, rendered from a template with :meth:`context`."""

    name: ClassVar[str]
    """The section's registered name."""
    title: ClassVar[str]
    """The section's heading in the report."""
    order: ClassVar[int] = 100
    """Sections are laid out by increasing order (the built-ins use 10 to 140)."""
    template: ClassVar[str]
    """Template file name, looked up in the user's folder, then the plugin's (a
    ``templates/`` folder next to the module defining the class, or the folder the class names
    in ``template_dir``), then the built-in ones. It renders the section's body only (the
    report adds the heading and the page) with ``ctx`` (what :meth:`context` returned),
    ``section`` and ``report``; every value is escaped. Ship it as package data."""

    @abstractmethod
    def context(self, result: AuditResult) -> dict[str, Any] | None:
        """Template variables for this section, or ``None`` when it does not apply."""


def class_problems(cls: object, base: type) -> list[str]:
    """Everything wrong with ``cls`` as a registered subclass of ``base`` (empty when fine)."""
    if not inspect.isclass(cls):
        return [f"expected a class deriving from {base.__name__}, got {cls!r}"]
    if not issubclass(cls, base):
        return [f"{cls.__qualname__} does not derive from xaudit's {base.__name__}"]
    problems: list[str] = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(
            f"{cls.__qualname__}.name must be a lower-case dotted name like 'shap.tree', "
            f"got {name!r}"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        problems.append(f"{cls.__qualname__} does not implement {missing}")
    for attr in ("Params", "Options"):
        params = getattr(cls, attr, None)
        if params is None:
            continue
        if not (inspect.isclass(params) and issubclass(params, PluginParams)):
            problems.append(f"{cls.__qualname__}.{attr} must derive from xaudit's PluginParams")
        elif params.model_config.get("extra") != "forbid":
            problems.append(f"{cls.__qualname__}.{attr} must forbid extra fields")
    if base is Check and getattr(cls, "direction", None) not in ("lower", "higher"):
        problems.append(f"{cls.__qualname__}.direction must be 'lower' or 'higher'")
    if base is ReportSection:
        for attr in ("title", "template"):
            if not isinstance(getattr(cls, attr, None), str):
                problems.append(f"{cls.__qualname__}.{attr} must be a string")
    return problems
