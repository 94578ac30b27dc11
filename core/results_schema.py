"""What a saved ``results.json`` must look like before anything reads it.

A results folder can come from someone else (an approved baseline, an artefact of another CI
job), so it is read as untrusted data: JSON only (never a pickle), one object at the top, no
nesting deeper than :data:`MAX_DEPTH` (:func:`read_json`), and then, once the schema version is
known to be this xaudit's, the type of every field that code computes with
(:func:`check_document`), with strict types: a number is a JSON number, not ``"1e-6"`` and not
``true``. Anything else raises :class:`~xaudit.errors.InputError` naming the field's path, so
``xaudit report`` exits 4 with a message instead of a traceback. Text with unpaired surrogates
(which ``\\ud800`` escapes can smuggle into JSON) is refused too, since no output format can
encode it. Fields only printed as they are (package versions, free-form details) keep any JSON
value.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import InputError
from .result_store import StoredArray

MAX_PROBLEMS = 10
"""Problems listed in the error before the rest are counted."""
MAX_DEPTH = 100
"""Deepest nesting read (results.json nests under 10 levels)."""


class _Record(BaseModel):
    """A saved record: strict types; fields this xaudit does not read are kept."""

    model_config = ConfigDict(strict=True, extra="allow")


class SavedError(_Record):
    """An exception recorded for an explainer or check."""

    type: str
    message: str
    traceback: str


class SavedCheck(_Record):
    """A check result as :class:`~xaudit.results.CheckResult` saves it (the fields the report
    computes with; the loader passes on only the dataclass's own fields)."""

    name: str
    check: str
    explainer: str
    direction: Literal["lower", "higher"]
    status: Literal["pass", "fail", "warn", "error", "not_gated"]
    value: float | None = None
    threshold: float | None = None
    warn_threshold: float | None = None
    details: dict[str, Any] = {}
    params: dict[str, Any] = {}
    seed: int = 0
    model_calls: int = 0
    wall_time_s: float = 0.0
    error: SavedError | None = None
    handoff: dict[str, Any] = {}
    passed: bool | None = None


class SavedExplanation(_Record):
    """An explanation's record; its arrays are in ``arrays.npz``, except those ``stored`` out
    of core, which point into ``arrays.zarr.zip`` (:mod:`xaudit.result_store`)."""

    method: str
    feature_names: list[str]
    output_names: list[str]
    params: dict[str, Any] = {}
    seed: int = 0
    wall_time_s: float = 0.0
    metadata: dict[str, Any] = {}
    additive: bool = False
    handoff: dict[str, Any] = {}
    stored: dict[Literal["values", "std_errors"], StoredArray] = {}


class SavedExplainerSpec(_Record):
    """An explainer entry of the saved suite, as the report lists it."""

    id: str
    method: str = ""
    params: dict[str, Any] = {}


class SavedSuite(_Record):
    """The suite as run (its report and documentation blocks are checked when read)."""

    name: str = ""
    description: str = ""
    seed: int = 0
    explainers: list[SavedExplainerSpec] = []
    report: dict[str, Any] | None = None
    documentation: dict[str, Any] | None = None


class SavedParameter(_Record):
    """One hyperparameter (:class:`~xaudit.hyperparameters.Parameter`)."""

    name: str
    value: str
    default: str | None = None
    changed: bool | None = None


class SavedLayer(_Record):
    """One leaf module (:class:`~xaudit.hyperparameters.Layer`)."""

    name: str
    kind: str
    parameters: int
    trainable: int


class SavedHyperparameters(_Record):
    """What the model said about how it is built, or why it said nothing."""

    unavailable: str | None = None
    family: str = ""
    kind: str = ""
    parameters: list[SavedParameter] = []
    layers: list[SavedLayer] = []
    facts: dict[str, str] = {}


class SavedModel(_Record):
    """What the report reads of the model's description."""

    name: str = "model"
    adapter: str = ""
    task: str | None = None
    output_names: list[str] | None = None
    capabilities: list[str] = []
    input_spec: dict[str, Any] | None = None
    hyperparameters: SavedHyperparameters | None = None


class SavedPool(_Record):
    """One feature over one pool of rows (:class:`~xaudit.representativeness.PoolSummary`)."""

    rows: int
    missing: int
    mean: float | None = None
    sd: float | None = None
    quantiles: list[float] = []
    shares: dict[str, float] = {}


class SavedComparison(_Record):
    """Two pools of one feature compared (:class:`~xaudit.representativeness.Comparison`)."""

    first: str
    second: str
    test: Literal["ks", "chi2"]
    statistic: float | None = None
    p_value: float | None = None
    distance: float | None = None


class SavedFeatureRepresentativeness(_Record):
    """One feature's pools and comparisons."""

    feature: str
    kind: Literal["numeric", "categorical"]
    pools: dict[str, SavedPool]
    comparisons: list[SavedComparison] = []


class SavedRepresentativeness(_Record):
    """The training, test and explained rows side by side, or why they are not."""

    skipped: str | None = None
    pools: list[str] = []
    quantiles: list[float] = []
    features: list[SavedFeatureRepresentativeness] = []


class SavedData(_Record):
    """What the report reads of the data's description."""

    source: str = ""
    shape: list[int] = []
    feature_names: list[str] = []
    categorical: list[str] = []
    target: str | None = None
    n_train: int | None = 0
    n_test: int | None = 0
    """``None``: no split (rows given to :func:`xaudit.explain` by the caller)."""
    n_background: int = 0
    background_means: dict[str, float] = {}
    """Per numeric feature, the background mean adverse-action directions are judged by."""
    explain_rows: list[int] = []
    sampling: dict[str, Any] = {}
    representativeness: SavedRepresentativeness | None = None


class SavedCacheUse(_Record):
    """Whether one explainer's result came from the explanation cache, and under which key."""

    hit: bool
    key: str


class SavedCache(_Record):
    """The explanation cache a run used (``--cache``), per explainer id."""

    folder: str
    explainers: dict[str, SavedCacheUse] = {}


class SavedBaseline(_Record):
    """The approved run a run was compared with (``--baseline``); what the reports read."""

    attribution_shares: dict[str, dict[str, dict[str, float]]] = {}


class SavedProvenance(_Record):
    """Hashes, seeds, timings and dates (ISO 8601); the cache and the baseline, when used."""

    hashes: dict[str, str] = {}
    cache: SavedCache | None = None
    baseline: SavedBaseline | None = None
    seeds: dict[str, Any] = {}
    timings: dict[str, float | dict[str, float]] = {}
    started_at: str | None = None
    finished_at: str | None = None

    @field_validator("started_at", "finished_at")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value:
            datetime.datetime.fromisoformat(value)
        return value


class SavedResults(_Record):
    """The whole ``results.json`` of schema version 2."""

    schema_version: int
    suite_name: str
    suite: SavedSuite
    suite_text: str = ""
    model: SavedModel
    data: SavedData
    explanations: dict[str, SavedExplanation]
    explainer_errors: dict[str, SavedError]
    checks: list[SavedCheck]
    provenance: SavedProvenance
    decisions: dict[str, Any] = {}
    """Reconciled adverse-action reasons, kept as written (a report recomputes them)."""


def read_json(content: bytes, path: Path) -> dict[str, Any]:
    """The JSON object in ``content``, the bytes of the file ``path``; :class:`InputError` for
    anything else, and for text that holds unpaired surrogates."""
    try:
        document = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path} is not valid JSON ({type(exc).__name__}: {exc}); "
                         "give a folder that `xaudit run` wrote") from None
    if not isinstance(document, dict):
        raise InputError(f"{path} holds a JSON {type(document).__name__}, not the object "
                         "`xaudit run` writes")
    _check_text(document, path)
    return document


def check_document(document: dict[str, Any], path: Path) -> None:
    """Refuse a decoded document (non-finite numbers as floats) that :class:`SavedResults`
    does not describe, naming up to :data:`MAX_PROBLEMS` fields."""
    try:
        SavedResults.model_validate(document)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise InputError(f"{path} is malformed: " + "; ".join(problems[:MAX_PROBLEMS]) + more +
                         "; give a folder that `xaudit run` wrote") from None


def _check_text(document: dict[str, Any], path: Path) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and strings (keys included) that hold
    unpaired surrogates; iterative, so that no depth exhausts Python's stack."""
    pending: list[tuple[Any, str, int]] = [(document, "", 0)]
    while pending:
        value, where, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"{path}: {where} is nested deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
            value, list) else ()
        texts = [value] if isinstance(value, str) else list(value) if isinstance(value,
                                                                                 dict) else []
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(f"{path}: {where or 'a key'} holds text that is not valid "
                                 "Unicode (an unpaired surrogate); no output could be written "
                                 "from it") from None
        pending += [(item, f"{where}.{key}" if where else str(key), depth + 1)
                    for key, item in items]
