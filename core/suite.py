"""The declarative suite: a YAML file (or a :class:`Suite` object) describing one audit.

Validation happens in two passes, and every problem is reported with its path, e.g.
``explainers[2].params.n_samples: Input should be greater than 0``: first the schema below,
then each explainer's and check's parameters against that plugin's own ``Params`` model and the
references between sections (:mod:`xaudit.suite_checks`; an unknown method gets the closest
registered names). Types are strict, as in a JSON document: ``seed: true`` and
``threshold: "1e-6"`` are refused rather than coerced. The YAML itself is read within bounds
(size, depth, alias expansion) and with duplicate keys refused (:mod:`xaudit.safe_yaml`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import Counter
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import Problem, SuiteError
from .safe_yaml import MAX_BYTES, load_yaml
from .targets import Target

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


class ModelSpec(Strict):
    """Where the model comes from and how to adapt it."""

    adapter: str = "auto"
    path: str | None = None
    """A model file (skops, ONNX, TorchScript, ...), relative to the suite file."""
    factory: str | None = None
    """``module:function`` returning the model; called with the Dataset if it takes an argument."""
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
        if (self.path is None) == (self.factory is None):
            raise ValueError("give exactly one of 'path' or 'factory'")
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


class DataSpec(Strict):
    """The data source and how rows are chosen from it."""

    source: str
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


class ExplainerSpec(Strict):
    """One explainer run: an id other sections refer to, a registered method, its params."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    target: Target | None = None
    """Which outputs to explain; the method's default when omitted."""


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


class CheckSpec(Strict):
    """One check on one explainer's output, optionally gated."""

    check: str
    explainer: str
    id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    gate: GateSpec | None = None
    reference: str | None = None
    """A second explainer's id, for checks that compare two explanations (``agreement``)."""

    @property
    def key(self) -> str:
        """The check's id, ``<check>@<explainer>`` by default."""
        return self.id or f"{self.check}@{self.explainer}"


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
    max_subjects: int = Field(50, ge=0, le=10_000)
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
    threshold: float = Field(allow_inf_nan=False)
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
    documentation: DocumentationSpec | None = None

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


def _json_ready(value: object, path: str, problems: list[Problem]) -> Any:
    """``value`` in JSON's types (YAML dates as ISO text); anything else is a problem."""
    if isinstance(value, dict):
        ready = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                problems.append(Problem(where, f"key {key!r} is a {type(key).__name__}, not "
                                        f"text; quote it ('{key}')"))
                continue
            ready[key] = _json_ready(item, where, problems)
        return ready
    if isinstance(value, list | tuple):
        return [_json_ready(item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
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


def parse_suite(data: object, source: str = "suite", base_dir: Path | None = None,
                text: str = "") -> Suite:
    """Schema-validate ``data`` (a mapping parsed from YAML) into a :class:`Suite`, with strict
    types (:func:`strict_validate`); raises :class:`SuiteError` listing every problem."""
    if not isinstance(data, dict):
        raise SuiteError([Problem("", f"a suite must be a mapping, got {type(data).__name__}")],
                         source)
    suite, problems = strict_validate(Suite, data)
    if suite is None:
        raise SuiteError(problems, source)
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
