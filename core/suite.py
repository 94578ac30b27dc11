"""The declarative suite: a YAML file (or a :class:`Suite` object) describing one audit.

Validation happens in two passes, and every problem is reported with its path, e.g.
``explainers[2].params.n_samples: Input should be greater than 0``: first the schema below,
then each explainer's and check's parameters against that plugin's own ``Params`` model and the
references between sections (:mod:`xaudit.suite_checks`; an unknown method gets the closest
registered names). Types are strict, as in a JSON document: ``seed: true`` and
``threshold: "1e-6"`` are refused rather than coerced. The YAML itself is read within bounds
(size, depth, alias expansion) and with duplicate keys refused (:mod:`xaudit.safe_yaml`). A suite
built in Python (a mapping given to :func:`xaudit.run_suite`) is validated the same way; only
there may the model and the data be in-memory objects (:data:`IN_MEMORY_FIELDS`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import Counter
from pathlib import Path, PurePath
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from .errors import Problem, SuiteError
from .safe_yaml import MAX_BYTES, MAX_DEPTH, load_yaml
from .targets import Target
from .verdict import GatePolicy

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of the suite's sections: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _unique(names: list[str] | None) -> list[str] | None:
    repeated = sorted(n for n, count in Counter(names or ()).items() if count > 1)
    if repeated:
        raise ValueError(f"{', '.join(map(repr, repeated))} listed more than once; "
                         "list each name once")
    return names


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
    """Adapter-specific options, validated against the adapter's ``Options``. Security switches
    (``trust``) are refused here: only ``model.trust`` allows code-running formats."""

    @field_validator("output_names")
    @classmethod
    def _unique_outputs(cls, names: list[str] | None) -> list[str] | None:
        return _unique(names)

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

    rows: list[Annotated[int, Field(ge=0, lt=2**63)]] | None = None
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

    @field_validator("features", "categorical")
    @classmethod
    def _unique_names(cls, names: list[str] | None) -> list[str] | None:
        return _unique(names)

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


class ExecutionSpec(Strict):
    """Where the rows of row-parallel explainers are explained (see ``docs/scale-out.md``).

    ``local`` (the default) explains in this process; ``dask`` hands row chunks to a
    ``dask.distributed`` cluster: the scheduler at ``address``, or a local cluster of
    ``n_workers`` processes that the run starts and stops. ``chunk_rows`` fixes the chunks, and
    with them the numbers: each chunk draws from its own stream, derived from the explainer's
    seed and the chunk's rows (:func:`~xaudit.seeding.chunk_rng`), so any engine and any number
    of workers give bit-identical results for the same ``chunk_rows``. Unset, the local engine
    explains all rows in one call (one stream) and the dask engine uses
    :data:`DEFAULT_CHUNK_ROWS`.
    """

    engine: Literal["local", "dask"] = "local"
    address: str | None = Field(None, min_length=1)
    """A running scheduler (``tcp://host:8786``); only with ``engine: dask``."""
    chunk_rows: int | None = Field(None, ge=1)
    n_workers: int | None = Field(None, ge=1)
    """Worker processes of the local cluster started when no ``address`` is given."""
    retries: int = Field(1, ge=0, le=10)
    """Extra attempts of a chunk that raised (a chunk lost with its worker is rescheduled by
    the engine itself); a chunk failing every attempt crashes its explainer."""

    @model_validator(mode="after")
    def _dask_only(self) -> ExecutionSpec:
        for name in ("address", "n_workers"):
            if self.engine == "local" and getattr(self, name) is not None:
                raise ValueError(f"{name} is set but engine is 'local'; set engine: dask")
        if self.address is not None and self.n_workers is not None:
            raise ValueError("give address (an existing scheduler) or n_workers (a local "
                             "cluster), not both")
        return self


DEFAULT_CHUNK_ROWS = 10_000
"""Rows per chunk on the dask engine when the suite does not set ``execution.chunk_rows``."""


class GateSpec(Strict):
    """Pass/fail rule for a check's value.

    The value passes when it is on the better side of ``threshold`` (``<=`` when lower is better,
    ``>=`` when higher is). A passing value on the worse side of ``warn_threshold`` warns. With
    ``severity: warn`` a failure only warns.
    """

    threshold: float = Field(allow_inf_nan=False)
    direction: Literal["lower", "higher"] | None = None
    """Defaults to the check's own declared direction."""
    warn_threshold: float | None = Field(None, allow_inf_nan=False)
    """Must lie on the better side of ``threshold`` (below it when lower is better)."""
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


ReportFormat = Literal["json", "html", "pdf", "md", "junit", "model_card"]
PdfVariant = Literal["pdf/a-3b", "pdf/a-3a", "pdf/ua-1", "plain"]


class ReportSpec(Strict):
    """Which outputs to write, where, and how the HTML/PDF report is laid out."""

    formats: list[ReportFormat] = Field(default=["json", "html", "pdf", "md", "junit",
                                                 "model_card"])
    """``model_card`` writes ``model_card.md`` and ``model_card.json`` (Mitchell et al. 2019)."""
    out_dir: str = "xaudit-results"
    pdf_variant: PdfVariant = "pdf/a-3b"
    """PDF/A-3b (archival, the default), PDF/A-3a (archival and tagged), PDF/UA-1, or plain."""
    template_dir: str | None = None
    """A folder of Jinja2 templates that override or extend the built-in ones."""
    top_k: int = Field(10, ge=1, le=200)
    """Features shown by name in charts and tables; the rest are aggregated."""
    local_rows: int = Field(3, ge=0, le=50)
    """Explained rows that get a waterfall chart in the local-explanations section."""
    max_subjects: int = Field(50, ge=0, le=10_000)
    """Explained rows that get a plain-language paragraph."""
    out_of_core_mb: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Attribution arrays estimated over this many MiB (rows x features x outputs x 8 bytes)
    are saved chunk by chunk to ``arrays.zarr.zip`` instead of ``arrays.npz``, and summarised
    by streaming (needs the ``dask`` extra); ``None``: always in ``arrays.npz``."""


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
    reference: str | None = None
    """The group adverse-outcome rates are compared with (its label as the report writes it:
    the value label, a category, or a bin such as ``[-0.05, 0.05)``); the largest group when
    omitted."""
    min_group: int = Field(30, ge=1)
    """Groups with fewer rows are flagged as too small to conclude from."""


class DecisionSpec(Strict):
    """When a model output counts as an adverse decision (e.g. a declined application)."""

    output: str | int = 0
    """The output (name or index) the decision is taken on."""
    adverse: Literal["above", "below"] = "above"
    threshold: float = Field(allow_inf_nan=False)
    """The output is adverse when strictly above (or below) this value."""
    primary_explainer: str | None = None
    """The explainer id whose attributions issue the adverse-action reasons; the other local
    explainers corroborate them. Default: the first explainer in suite order whose method is
    additive (SHAP: attributions sum to the output), else the first local attribution
    explainer."""
    min_surrogate_r2: float = Field(0.5, ge=0.0, le=1.0)
    """Reasons from a local surrogate (LIME) whose weighted R² on its samples is below this
    are withheld: the surrogate does not describe the model around that subject."""
    min_signal_to_error: float = Field(2.0, ge=0.0, allow_inf_nan=False)
    """A sampled attribution (``shap.kernel``, ``shap.permutation``: any explainer recording
    standard errors) smaller than this many of its standard errors is withheld as a reason:
    it cannot be told from zero (2 is about 95% two-sided under a normal error)."""


class DirectionalReason(Strict):
    """Adverse-action statements that depend on the feature's value: ``high`` when it is above
    the reference (the background mean), ``low`` when below. A direction left out issues no
    statement for values on that side."""

    high: str | None = Field(None, min_length=1)
    low: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _some_statement(self) -> DirectionalReason:
        if self.high is None and self.low is None:
            raise ValueError("give a 'high' or a 'low' statement (or both)")
        return self


def _reason_form(value: Any) -> str | None:
    """Which form a reason code is written in (``None``: neither, one clear error). The tags
    hold brackets so that problem paths leave them out, as they do pydantic's own steps."""
    if isinstance(value, str):
        return "[plain]"
    return "[high/low]" if isinstance(value, dict | DirectionalReason) else None


ReasonCode = Annotated[
    Annotated[str, Tag("[plain]")] | Annotated[DirectionalReason, Tag("[high/low]")],
    Discriminator(_reason_form, custom_error_type="reason_code",
                  custom_error_message="write a statement, or a mapping with 'high' and/or "
                                       "'low' statements")]
"""A plain statement (issued whatever the value's direction, which the report prints beside
it) or statements per direction."""


class DocumentationSpec(Strict):
    """What only people know: purpose, ownership, sign-off, segments and reason codes."""

    intended_use: str = ""
    out_of_scope: list[str] = Field(default_factory=list)
    owner: str = ""
    contact: str = ""
    inventory_id: str = ""
    risk_tier: str = ""
    status: Literal["draft", "approved", "rejected"] = "draft"
    """``approved`` only with a complete ``approved_by`` (name, role and ISO date)."""
    prepared_by: Person | None = None
    reviewed_by: Person | None = None
    approved_by: Person | None = Field(None, validate_default=True)
    segments: list[str | SegmentSpec] = Field(default_factory=list)
    decision: DecisionSpec | None = None
    reason_codes: dict[str, ReasonCode] = Field(default_factory=dict)
    """Feature name -> adverse-action statement: ``bmi: Body-mass index`` (issued for any
    value) or ``s1: {high: Total serum cholesterol is high, low: ...}`` (issued only on the
    side of the background mean the subject's value is on)."""
    version: str = ""
    """The model's version as the owner names it (release, registry version)."""
    training_procedure: str = ""
    """How the model was trained: algorithm, data split, tuning, stopping."""
    data_lineage: str = ""
    """Where the training data come from and what was done to them before training."""
    limitations: list[str] = Field(default_factory=list)
    """Known limitations of the model, one statement each."""
    value_labels: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Feature name -> {coded value: label}, e.g. ``sex: {"-0.04464": code 1}``; the reports
    show the label instead of the code. Codes are text (quote numbers in YAML); a numeric code
    matches values within a relative tolerance of 1e-3 (codes printed to four or five
    significant digits match the stored floats)."""

    @field_validator("approved_by")
    @classmethod
    def _approval_is_signed(cls, person: Person | None, info: ValidationInfo) -> Person | None:
        """``status: approved`` is refused unless the approver is named with role and date."""
        if info.data.get("status") != "approved":
            return person
        gaps = ["the approved_by entry"] if person is None else [
            part for part, value in (("name", person.name.strip()), ("role", person.role.strip()),
                                     ("date", person.date)) if not value]
        if gaps:
            raise ValueError(f"status: approved needs an approver with name, role and date "
                             f"(an ISO date, e.g. 2025-03-31); missing: {', '.join(gaps)}")
        return person


class BaselineSpec(Strict):
    """The approved run a governance run compares with: a results folder ``xaudit run`` wrote,
    read as data (:meth:`~xaudit.results.AuditResult.load`), never run."""

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
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    """Where row-parallel explainers run: this process, or a Dask cluster."""

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


def _json_ready(value: object, path: str, problems: list[Problem], depth: int = 0) -> Any:
    """``value`` in JSON's types (YAML dates as ISO text); anything else is a problem, and so is
    nesting deeper than YAML's bound (a mapping built in Python may even contain itself)."""
    if isinstance(value, dict | list | tuple) and depth >= MAX_DEPTH:
        problems.append(Problem(path, f"nested deeper than {MAX_DEPTH} levels"))
        return None
    if isinstance(value, dict):
        ready = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                problems.append(Problem(where, f"key {key!r} is a {type(key).__name__}, not "
                                        f"text; quote it ('{key}')"))
                continue
            ready[key] = _json_ready(item, where, problems, depth + 1)
        return ready
    if isinstance(value, list | tuple):
        return [_json_ready(item, f"{path}[{i}]", problems, depth + 1)
                for i, item in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime.date):  # a YAML timestamp (a datetime is a date too)
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    problems.append(Problem(path, f"a value of type {type(value).__name__} cannot be used; "
                            "write text, a number, true/false, a list or a mapping"))
    return None


def strict_validate(schema: type[M], data: object,
                    path: str = "") -> tuple[M | None, list[Problem]]:
    """``data`` validated by ``schema`` with strict types, as a JSON document is: ``true`` is not
    a number and ``"1e-6"`` is not a float (YAML's ``1e-6`` is, see :mod:`xaudit.safe_yaml`).

    Returns the model, or ``None`` and every problem with its path under ``path``.
    """
    problems: list[Problem] = []
    ready = _json_ready(data, path, problems)
    if problems:
        return None, problems
    try:
        return schema.model_validate_json(json.dumps(ready), strict=True), []
    except ValidationError as exc:
        return None, _schema_problems(exc, path)


IN_MEMORY_FIELDS: dict[str, type[WithObjects]] = {"model": ModelSpec, "data": DataSpec}
"""The sections whose :attr:`~WithObjects.OBJECTS` may hold in-memory objects: in a suite built
in Python only, never in a suite file."""

_SET_ASIDE = "(an in-memory object)"
_FILE_FIELD = {"model": "model.path (a file is loaded only as model.trust allows)",
               "data": "data.source"}


def _set_objects_aside(data: dict[str, Any], objects_allowed: bool
                       ) -> tuple[dict[str, Any], dict[tuple[str, str], Any], list[Problem]]:
    """``data`` with each in-memory object replaced by a placeholder text, so that everything
    else is validated with strict types; the objects by (section, field name); and, where
    objects are not allowed (a suite file), a problem for each one written (and for a path or
    text given as an object)."""
    ready, objects, problems = dict(data), {}, []
    for section, spec in IN_MEMORY_FIELDS.items():
        part = ready.get(section)
        if not isinstance(part, dict):
            continue
        part = ready[section] = dict(part)
        for name in spec.OBJECTS:
            for key in dict.fromkeys((spec.model_fields[name].alias or name, name)):
                if part.get(key) is None:
                    continue
                if objects_allowed and isinstance(part[key], str | PurePath):
                    problems.append(Problem(f"{section}.{key}", "give an object here, not a "
                                            f"path or text; name a file in {_FILE_FIELD[section]}"))
                elif objects_allowed:
                    objects[section, name] = part[key]
                    part[key] = _SET_ASIDE
                else:
                    problems.append(Problem(f"{section}.{key}", "in-memory objects are given "
                                            "only in a suite built in Python (a mapping passed "
                                            "to xaudit.run_suite); a suite file names its model "
                                            "by path or factory and its data by source"))
                    del part[key]
    return ready, objects, problems


def parse_suite(data: object, source: str = "suite", base_dir: Path | None = None,
                text: str = "", *, objects_allowed: bool = False) -> Suite:
    """Schema-validate ``data`` (a mapping parsed from YAML) into a :class:`Suite`, with strict
    types (:func:`strict_validate`); raises :class:`SuiteError` listing every problem.

    ``objects_allowed`` (a suite built in Python): ``model.object``, ``data.frame``,
    ``data.X`` and ``data.y`` may hold objects, which are kept as given (everything else is
    validated as in a file); otherwise they are refused."""
    if not isinstance(data, dict):
        raise SuiteError([Problem("", f"a suite must be a mapping, got {type(data).__name__}")],
                         source)
    ready, objects, problems = _set_objects_aside(data, objects_allowed)
    suite, schema_problems = strict_validate(Suite, ready)
    if suite is None or problems:
        raise SuiteError([*problems, *schema_problems], source)
    for (section, name), obj in objects.items():
        setattr(getattr(suite, section), name, obj)
    suite.base_dir = base_dir or Path(".")
    suite.text = text
    canonical = text or suite.model_dump_json()
    suite.sha256 = hashlib.sha256(canonical.encode()).hexdigest()
    return suite


def load_suite(path: str | Path) -> Suite:
    """Read and schema-validate a suite file (YAML within the bounds of
    :mod:`xaudit.safe_yaml`); :func:`xaudit.suite_checks.validate_suite` adds the plugin pass."""
    return parse_suite(*read_suite(path))


def read_suite(path: str | Path) -> tuple[object, str, Path, str]:
    """The parsed YAML of a suite file, its name, its folder and its text: the arguments of
    :func:`parse_suite` (which hashes the text: the file's bytes, as it is UTF-8)."""
    path = Path(path)
    if path.is_dir():
        raise SuiteError([Problem("", f"{path} is a folder, not a suite file; give the path of "
                                  "the suite's YAML file")], str(path))
    if not path.is_file():
        raise SuiteError([Problem("", f"suite file {path} does not exist")], str(path))
    with path.open("rb") as handle:
        raw = handle.read(MAX_BYTES + 1)
    data = load_yaml(raw, str(path))
    return data, str(path), path.resolve().parent, raw.decode("utf-8")
