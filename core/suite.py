"""The declarative suite: a YAML file (or a :class:`Suite` object) describing one audit.

Validation happens in two passes, and every problem is reported with its path, e.g.
``explainers[2].params.n_samples: Input should be greater than 0``: first the schema below,
then each explainer's and check's parameters against that plugin's own ``Params`` model and the
references between sections (an unknown method gets the closest registered names).
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from .auto import AUTO
from .data import source_extra
from .errors import Problem, SuiteError
from .extras import MODEL_FILE_EXTRAS, REPORT_EXTRAS, unavailable_reason
from .host import Host
from .plugin import ModelCheck
from .targets import Target
from .verdict import GatePolicy


class Strict(BaseModel):
    """Base of the suite's sections: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def in_memory(value: Any) -> str | None:
    """How an in-memory object of a suite built in Python is written in results.json (its type
    and size, never its content; the provenance hashes the content)."""
    if value is None:
        return None
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    shape = getattr(value, "shape", None)
    return f"in-memory {kind}" + (f" shaped {list(shape)}" if shape is not None else "")


InMemory = Annotated[Any, PlainSerializer(in_memory, return_type=str | None)]
"""A field holding an in-memory object, dumped as its :func:`in_memory` description."""


class WithObjects(Strict):
    """A section that may hold in-memory objects (:attr:`OBJECTS`, by field name): dumped as
    :func:`in_memory` descriptions, and left out of dumps when absent, so suites read from
    files dump as before."""

    OBJECTS: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        for name in self.OBJECTS:
            if getattr(self, name) is None:
                for key in (name, type(self).model_fields[name].alias):
                    data.pop(key, None)
        return data


class ModelSpec(WithObjects):
    """Where the model comes from and how to adapt it."""

    OBJECTS = ("obj",)

    adapter: str = "auto"
    path: str | None = None
    """A model file (skops, ONNX, TorchScript, ...), relative to the suite file."""
    factory: str | None = None
    """``module:function`` returning the model; called with the Dataset if it takes an argument."""
    obj: InMemory = Field(None, alias="object")
    """A model object, for a suite given to :func:`xaudit.run_suite` as a mapping (``model:
    {object: estimator}``); results.json records its type, the provenance its fingerprint."""
    trust: bool = False
    """Allow loading formats that can run code (pickle, joblib)."""
    task: Literal["classification", "regression", "other"] | None = None
    output_names: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    """Adapter-specific options, validated by the adapter."""

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        given = [name for name, value in (("path", self.path), ("factory", self.factory),
                                          ("object", self.obj)) if value is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'path', 'factory' or 'object' (an object "
                             "only in a suite built in Python)")
        if self.factory is not None and ":" not in self.factory:
            raise ValueError("'factory' must look like 'module:function'")
        return self


class SplitSpec(Strict):
    """A seeded random train/test split; ``test_size: 0`` uses every row for both."""

    test_size: float = Field(0.25, ge=0.0, lt=1.0)


class RowsSpec(Strict):
    """Which rows are explained: explicit ``rows`` or ``n`` rows drawn from a pool."""

    rows: list[int] | None = None
    n: int | None = Field(20, gt=0)
    pool: Literal["test", "train", "all"] = Field("test", alias="from")
    method: Literal["random", "first"] = "random"


class BackgroundSpec(Strict):
    """The background (reference) rows explainers integrate over."""

    n: int | None = Field(100, gt=0)
    pool: Literal["test", "train", "all"] = Field("train", alias="from")
    method: Literal["random", "first"] = "random"


class DataSpec(WithObjects):
    """The data source and how rows are chosen from it.

    ``source`` names a file or a dataset shipped with scikit-learn; a suite built in Python
    (a mapping given to :func:`xaudit.run_suite`) may give an in-memory pandas DataFrame as
    ``frame`` (``target`` its label column) or arrays as ``X`` and ``y`` instead.
    results.json records their type and shape; the provenance hashes their content.
    """

    OBJECTS = ("frame", "X", "y")

    source: str | None = None
    frame: InMemory = None
    """An in-memory pandas DataFrame (its index labels the explained rows)."""
    X: InMemory = None
    """In-memory rows ``(n, *row_shape)``, named ``x0 ...``."""
    y: InMemory = None
    """Labels of the rows of ``X``."""
    target: str | None = None
    features: list[str] | None = None
    categorical: list[str] = Field(default_factory=list)
    shape: list[int] | None = None
    """Reshape each row to this shape after reading, e.g. ``[1, 8, 8]`` to give an image model
    scikit-learn's flat 8x8 digits (feature names then index the pixels)."""
    split: SplitSpec = Field(default_factory=SplitSpec)
    explain: RowsSpec = Field(default_factory=RowsSpec)
    background: BackgroundSpec = Field(default_factory=BackgroundSpec)

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        given = [name for name, value in (("source", self.source), ("frame", self.frame),
                                          ("X", self.X)) if value is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'source', 'frame' or 'X' (frame and X only "
                             "in a suite built in Python)")
        if self.y is not None and self.X is None:
            raise ValueError("'y' gives the labels of 'X'; with 'source' or 'frame' name the "
                             "label column in 'target'")
        if self.X is not None and self.target is not None:
            raise ValueError("'target' names a column; with 'X' give the labels as 'y'")
        return self


class ExplainerSpec(Strict):
    """One explainer run: an id other sections refer to, a registered method, its params."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    method: str
    """A registered explainer, or ``auto`` (chosen from the model's capabilities; see
    :mod:`xaudit.auto`)."""
    params: dict[str, Any] = Field(default_factory=dict)
    target: Target | None = None
    """Which outputs to explain; the method's default when omitted."""


class GateSpec(Strict):
    """Pass/fail rule for a check's value.

    The value passes when it is on the better side of ``threshold`` (``<=`` when lower is better,
    ``>=`` when higher is). A passing value on the worse side of ``warn_threshold`` warns. With
    ``severity: warn`` a failure only warns.
    """

    threshold: float
    direction: Literal["lower", "higher"] | None = None
    """Defaults to the check's own declared direction."""
    warn_threshold: float | None = None
    severity: Literal["fail", "warn"] = "fail"
    relative_to: Literal["baseline"] | None = None
    """``baseline``: ``threshold`` and ``warn_threshold`` are offsets from the approved run's
    value of the same check (``threshold: -0.02`` with ``higher`` better: at least the
    baseline's value minus 0.02). Evaluated only when the run has a baseline."""


class CheckSpec(Strict):
    """One check, optionally gated: of one explainer's output, or of the model itself
    (a performance check, named without ``explainer``)."""

    check: str
    explainer: str | None = None
    id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    gate: GateSpec | None = None
    reference: str | None = None
    """A second explainer's id, for checks that compare two explanations (``agreement``)."""

    @property
    def key(self) -> str:
        """The check's id: ``<check>@<explainer>`` by default, ``<check>`` for a model check."""
        return self.id or (self.check if self.explainer is None
                           else f"{self.check}@{self.explainer}")


ReportFormat = Literal["json", "html", "pdf", "md", "junit"]
PdfVariant = Literal["pdf/a-3b", "pdf/a-3a", "pdf/ua-1", "plain"]


class ReportSpec(Strict):
    """Which outputs to write, where, and how the HTML/PDF report is laid out."""

    formats: list[ReportFormat] = Field(default=["json", "html", "pdf", "md", "junit"])
    out_dir: str = "xaudit-results"
    pdf_variant: PdfVariant = "pdf/a-3b"
    """PDF/A-3b (archival, the default), PDF/A-3a (archival and tagged), PDF/UA-1, or plain."""
    template_dir: str | None = None
    """A folder of Jinja2 templates that override or extend the built-in ones."""
    top_k: int = Field(10, ge=1, le=200)
    """Features shown by name in charts and tables; the rest are aggregated."""
    local_rows: int = Field(3, ge=0, le=50)
    """Explained rows that get a waterfall chart in the local-explanations section."""
    max_subjects: int = Field(50, ge=0)
    """Explained rows that get a plain-language paragraph."""


class Person(Strict):
    """Someone who prepares, reviews or approves the audit."""

    name: str
    role: str = ""
    date: datetime.date | None = None


class SegmentSpec(Strict):
    """A feature to break results down by: its categories, or numeric ``bins`` (edges)."""

    feature: str
    bins: list[float] | None = None
    """Bin edges for a numeric feature; quartiles of the explained rows when omitted."""


class DecisionSpec(Strict):
    """When a model output counts as an adverse decision (e.g. a declined application)."""

    output: str | int = 0
    """The output (name or index) the decision is taken on."""
    adverse: Literal["above", "below"] = "above"
    threshold: float
    """The output is adverse when strictly above (or below) this value."""


class DocumentationSpec(Strict):
    """What only people know: purpose, ownership, sign-off, segments and reason codes."""

    intended_use: str = ""
    out_of_scope: list[str] = Field(default_factory=list)
    owner: str = ""
    contact: str = ""
    inventory_id: str = ""
    risk_tier: str = ""
    status: Literal["draft", "approved", "rejected"] = "draft"
    prepared_by: Person | None = None
    reviewed_by: Person | None = None
    approved_by: Person | None = None
    segments: list[str | SegmentSpec] = Field(default_factory=list)
    decision: DecisionSpec | None = None
    reason_codes: dict[str, str] = Field(default_factory=dict)
    """Feature name -> adverse-action statement, e.g. ``bmi: Body-mass index too high``."""


class BaselineSpec(Strict):
    """The approved run a governance run compares with: a results folder ``xaudit run`` wrote."""

    path: str
    """The folder, relative to the suite file (``xaudit run --baseline DIR`` overrides it)."""
    feature_changes: Literal["refuse", "compare"] = "refuse"
    """``refuse``: a run whose features differ from the baseline's is refused (exit 4), naming
    the features added and missing. ``compare``: such features are compared as contributing
    nothing in the run that lacks them (a new leak column, a dropped feature)."""

    @model_validator(mode="before")
    @classmethod
    def _bare_path(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class Suite(Strict):
    """A whole audit: model, data, explainers, checks and report."""

    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(0, ge=0)
    model: ModelSpec
    data: DataSpec
    explainers: list[ExplainerSpec] = Field(min_length=1)
    checks: list[CheckSpec] = Field(default_factory=list)
    report: ReportSpec = Field(default_factory=ReportSpec)
    gate_policy: GatePolicy = Field(default_factory=GatePolicy)
    """How gate statuses decide the run (``fail_on_warn``); recorded with the results."""
    documentation: DocumentationSpec | None = None
    baseline: BaselineSpec | None = None
    """The approved run drift checks and relative gates compare with (a path, or a mapping)."""

    base_dir: Path = Field(default=Path("."), exclude=True)
    """Folder relative paths resolve against (the suite file's folder)."""
    sha256: str = Field(default="", exclude=True)
    """SHA-256 of the suite file's bytes (of its canonical JSON when built in Python)."""
    text: str = Field(default="", exclude=True)
    """The suite as written, kept for the report's appendix."""


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _schema_problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        path = _path(loc)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (not allowed here)"
        problems.append(Problem(path, message))
    return problems


def parse_suite(data: object, source: str = "suite", base_dir: Path | None = None,
                text: str = "") -> Suite:
    """Schema-validate ``data`` (a mapping parsed from YAML) into a :class:`Suite`."""
    if not isinstance(data, dict):
        raise SuiteError([Problem("", f"a suite must be a mapping, got {type(data).__name__}")],
                         source)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(_schema_problems(exc), source) from None
    suite.base_dir = base_dir or Path(".")
    suite.text = text
    canonical = text or suite.model_dump_json()
    suite.sha256 = hashlib.sha256(canonical.encode()).hexdigest()
    return suite


def load_suite(path: str | Path) -> Suite:
    """Read and schema-validate a suite file."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError([Problem("", f"suite file {path} does not exist")], str(path))
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise SuiteError([Problem("", f"not valid YAML: {exc}")], str(path)) from None
    suite = parse_suite(data, str(path), path.resolve().parent, raw.decode("utf-8", "replace"))
    suite.sha256 = hashlib.sha256(raw).hexdigest()
    return suite


def check_against_host(suite: Suite, host: Host, source: str = "suite",
                       dependencies: bool = True) -> None:
    """Second pass: plugin names, plugin params, references and files; raises SuiteError.

    With ``dependencies`` the extras the data source, the model and the report formats need
    must be installed too (a pre-commit hook validating suites it does not run passes
    ``False``).
    """
    problems: list[Problem] = []
    if suite.model.adapter != "auto" and suite.model.adapter not in host.adapters:
        problems.append(_unknown("model.adapter", host, "adapters", suite.model.adapter))
    if suite.model.path is not None and not (suite.base_dir / suite.model.path).exists():
        problems.append(Problem("model.path", f"file {suite.model.path} does not exist"))
    data_source = suite.data.source
    if data_source is not None and not data_source.startswith("sklearn:") and not (
            suite.base_dir / data_source).is_file():
        problems.append(Problem("data.source", f"file {data_source} does not exist"))
    ids: dict[str, int] = {}
    for i, spec in enumerate(suite.explainers):
        where = f"explainers[{i}]"
        if spec.id in ids:
            problems.append(Problem(f"{where}.id", f"duplicate id {spec.id!r} "
                                    f"(also explainers[{ids[spec.id]}])"))
        ids.setdefault(spec.id, i)
        if spec.method == AUTO:
            if spec.params:
                problems.append(Problem(f"{where}.params", "method 'auto' takes no parameters; "
                                        "name the method to set them"))
            continue
        if spec.method not in host.explainers:
            problems.append(_unknown(f"{where}.method", host, "explainers", spec.method))
            continue
        problems += _param_problems(host.explainers.get(spec.method).Params, spec.params,
                                    f"{where}.params")
    keys: set[str] = set()
    for j, check in enumerate(suite.checks):
        where = f"checks[{j}]"
        if check.key in keys:
            problems.append(Problem(f"{where}.id", f"duplicate check id {check.key!r}; give "
                                    "each of them its own id"))
        keys.add(check.key)
        if check.explainer is not None and check.explainer not in ids:
            problems.append(Problem(f"{where}.explainer", f"no explainer has id "
                                    f"{check.explainer!r}; ids are {', '.join(ids) or 'none'}"))
        if check.reference is not None and check.reference not in ids:
            problems.append(Problem(f"{where}.reference", f"no explainer has id "
                                    f"{check.reference!r}; ids are {', '.join(ids) or 'none'}"))
        if check.check not in host.checks:
            problems.append(_unknown(f"{where}.check", host, "checks", check.check))
            continue
        problems += _subject_problems(check, host, ids, where)
        problems += _param_problems(host.checks.get(check.check).Params, check.params,
                                    f"{where}.params")
    if dependencies:
        problems += _install_problems(suite, host)
    problems += _report_problems(suite, dependencies)
    if problems:
        raise SuiteError(problems, source)


def _subject_problems(check: CheckSpec, host: Host, ids: dict[str, int],
                      where: str) -> list[Problem]:
    """A model check names no explainer; every other check names one."""
    model_check = issubclass(host.checks.get(check.check), ModelCheck)
    if model_check and check.explainer is not None:
        return [Problem(f"{where}.explainer", f"{check.check} measures the model on held-out "
                        "rows, not an explanation: remove 'explainer'")]
    if not model_check and check.explainer is None:
        return [Problem(f"{where}.explainer", f"{check.check} checks an explanation: name the "
                        f"explainer whose output it measures (ids are "
                        f"{', '.join(ids) or 'none'})")]
    return []


def _report_problems(suite: Suite, dependencies: bool = True) -> list[Problem]:
    """Formats whose extras are missing (with ``dependencies``), and a template folder that
    does not exist."""
    problems = []
    for i, fmt in enumerate(suite.report.formats):
        reason = unavailable_reason(REPORT_EXTRAS.get(fmt)) if dependencies else ""
        if reason:
            problems.append(Problem(f"report.formats[{i}]", f"{fmt!r} {reason}: pip install "
                                    f"'xaudit[{REPORT_EXTRAS[fmt]}]', or leave the format out"))
    folder = suite.report.template_dir
    if folder is not None and not (suite.base_dir / folder).is_dir():
        problems.append(Problem("report.template_dir", f"folder {folder} does not exist"))
    return problems


def _install_problems(suite: Suite, host: Host) -> list[Problem]:
    """The data source's and the model's optional installs that are missing here."""
    source = suite.data.source
    needs: list[tuple[str, str | None]] = [("data.source",
                                            source_extra(source) if source else None)]
    if suite.model.adapter in host.adapters:
        needs.append(("model.adapter", host.adapters.get(suite.model.adapter).extra))
    if suite.model.path is not None:
        needs.append(("model.path", MODEL_FILE_EXTRAS.get(Path(suite.model.path).suffix)))
    problems = []
    for path, extra in needs:
        reason = unavailable_reason(extra)
        if reason:
            problems.append(Problem(path, f"{reason}: pip install 'xaudit[{extra}]'"))
    return problems


def _unknown(path: str, host: Host, registry_name: str, name: str) -> Problem:
    return Problem(path, str(getattr(host, registry_name).unknown(name)))


def _param_problems(schema: type[BaseModel], params: dict[str, Any], path: str) -> list[Problem]:
    try:
        schema.model_validate(params)
    except ValidationError as exc:
        return _schema_problems(exc, path)
    return []
