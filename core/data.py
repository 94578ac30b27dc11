"""Datasets: the rows a suite explains, the background it explains against, and their hash.

Sources: a CSV, Parquet or NPZ file, or a dataset shipped inside scikit-learn
(``sklearn:diabetes``, ``sklearn:breast_cancer``, ``sklearn:iris``, ``sklearn:wine``,
``sklearn:digits``, ``sklearn:linnerud``). Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import InputError
from .extras import import_from_extra, require_extra
from .model import sha256_of_arrays
from .npz import read_npz
from .representativeness import representativeness
from .rowindex import RowIndex
from .tables import as_rows

if TYPE_CHECKING:
    from .suite import DataSpec

SKLEARN_DATASETS = ("breast_cancer", "diabetes", "digits", "iris", "linnerud", "wine")
FILE_SUFFIXES = (".csv", ".parquet", ".npz")
BackgroundMethod = Literal["random", "first"]


@dataclass
class Dataset:
    """Features, labels, the train/test split, explained rows and background."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: tuple[str, ...]
    source: str
    fingerprint: str
    train_rows: np.ndarray
    test_rows: np.ndarray
    explain_rows: np.ndarray
    background: np.ndarray | None
    categorical: tuple[str, ...] = ()
    target_name: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    """How the split, explained rows and background were chosen (for the report)."""
    row_index: RowIndex | None = None
    """Labels of all rows of ``X`` (an in-memory DataFrame's index), when they have some."""

    @property
    def X_train(self) -> np.ndarray:
        """Training rows (the model factory trains on these)."""
        return np.asarray(self.X[self.train_rows])

    @property
    def y_train(self) -> np.ndarray | None:
        """Training labels."""
        return None if self.y is None else np.asarray(self.y[self.train_rows])

    @property
    def X_test(self) -> np.ndarray:
        """Held-out rows."""
        return np.asarray(self.X[self.test_rows])

    @property
    def y_test(self) -> np.ndarray | None:
        """Held-out labels."""
        return None if self.y is None else np.asarray(self.y[self.test_rows])

    @property
    def X_explain(self) -> np.ndarray:
        """The rows explanations are computed for."""
        return np.asarray(self.X[self.explain_rows])

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description for provenance and reports."""
        return {
            "source": self.source,
            "sha256": self.fingerprint,
            "shape": list(self.X.shape),
            "feature_names": list(self.feature_names),
            "categorical": list(self.categorical),
            "target": self.target_name,
            "n_train": int(self.train_rows.size),
            "n_test": int(self.test_rows.size),
            "explain_rows": self.explain_rows.tolist(),
            "n_background": 0 if self.background is None else int(self.background.shape[0]),
            "background_means": background_means(self.background, self.feature_names,
                                                 self.categorical),
            "sampling": self.sampling,
            "representativeness": representativeness(
                self.X, self.feature_names, self.categorical,
                {"train": self.train_rows, "test": self.test_rows,
                 "explained": self.explain_rows}),
        }

    @classmethod
    def from_arrays(
        cls,
        X: np.ndarray,
        y: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        background: np.ndarray | None = None,
        source: str = "in-memory arrays",
    ) -> Dataset:
        """A dataset whose every row is explained (used by the Python API)."""
        X = as_rows(X)
        rows = np.arange(X.shape[0])
        return cls(
            X=X,
            y=None if y is None else np.asarray(y),
            feature_names=tuple(feature_names or default_feature_names(X.shape[1:])),
            source=source,
            fingerprint=sha256_of_arrays(X) if y is None else sha256_of_arrays(X, np.asarray(y)),
            train_rows=rows,
            test_rows=rows,
            explain_rows=rows,
            background=None if background is None else as_rows(background),
        )


def default_feature_names(feature_shape: Sequence[int]) -> tuple[str, ...]:
    """``x0 ... x{d-1}`` for ``d = prod(feature_shape)``."""
    return _numbered_names(int(math.prod(feature_shape)))


@functools.lru_cache(maxsize=16)
def _numbered_names(d: int) -> tuple[str, ...]:
    """``x0 ... x{d-1}``, built once per ``d`` (an image has tens of thousands of values, and
    every explanation of it names them)."""
    return tuple(f"x{i}" for i in range(d))


@dataclass
class RawTable:
    """Columns read from a source before the suite's selections are applied."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: tuple[str, ...]
    target_name: str | None
    fingerprint: str
    row_index: RowIndex | None = None
    """Labels of the rows (an in-memory DataFrame's index)."""


def read_table(spec: DataSpec, base_dir: Path) -> RawTable:
    """The suite's data: its ``source`` file or dataset, or an in-memory ``frame`` or ``X``."""
    if spec.frame is not None:
        return read_frame(spec.frame, spec.target)
    if spec.X is not None:
        return read_arrays(spec.X, spec.y)
    return read_source(str(spec.source), base_dir, spec.target)


def read_source(source: str, base_dir: Path, target: str | None) -> RawTable:
    """Read ``source`` (relative paths resolve against ``base_dir``).

    The file type follows the name as given (a ``data.csv`` symbolic link to a file without a
    suffix is read as CSV). A file that cannot be read as its type raises :class:`InputError`
    saying what is wrong: an empty or binary CSV, a Parquet file that is not one, an NPZ that
    is not a zip archive or holds object arrays. Nullable columns (pandas' ``Int64``,
    ``Float64``, ``boolean``) are read with ``NA`` as NaN (:func:`~xaudit.tables.as_rows`).
    """
    if source.startswith("sklearn:"):
        return _read_sklearn(source.removeprefix("sklearn:"))
    given = base_dir / source
    suffix = given.suffix
    if suffix not in FILE_SUFFIXES:
        raise InputError(
            f"data source {source!r}: unsupported file type {suffix or '(none)'}; "
            f"use {', '.join(FILE_SUFFIXES)} or sklearn:<{'|'.join(SKLEARN_DATASETS)}>"
        )
    path = given.resolve()
    if not path.is_file():
        raise InputError(f"data source {source!r}: file {path} does not exist")
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if suffix == ".npz":
        return _read_npz(path, digest)
    pandas = import_from_extra("pandas", source_extra(source) or "data",
                               f"reading the data file {given.name}")
    if suffix == ".parquet":
        require_extra("parquet", f"reading the data file {given.name}")
    if suffix == ".csv":
        if not content.strip():
            raise InputError(f"data source {source!r} is empty; a CSV file needs a header row "
                             "and at least one row of data")
        if b"\x00" in content:
            raise InputError(f"data source {source!r} is binary (it holds NUL bytes), not CSV "
                             "text")
    try:
        frame = pandas.read_csv(path) if suffix == ".csv" else pandas.read_parquet(path)
    except (ValueError, OSError) as exc:  # pandas' parser errors and pyarrow's are ValueErrors
        raise InputError(f"data source {source!r} cannot be read as {suffix[1:]}: "
                         f"{type(exc).__name__}: {exc}") from None
    return _from_frame(frame, target, f"data source {source!r}", digest)


def read_frame(frame: Any, target: str | None) -> RawTable:
    """Columns of an in-memory pandas DataFrame (``target`` its label column), hashed by
    :func:`frame_sha256`; its index is kept as the rows' labels."""
    if not hasattr(frame, "columns") or not hasattr(frame, "index"):
        raise InputError(f"data.frame must be a pandas DataFrame, got {type(frame).__name__}; "
                         "give arrays as data.X (and data.y)")
    table = _from_frame(frame.copy(), target, "data.frame", frame_sha256(frame))
    return dataclasses.replace(table, row_index=RowIndex.of(frame))


def read_arrays(X: Any, y: Any) -> RawTable:
    """In-memory rows ``X`` (and labels ``y``), hashed over their dtypes, shapes and bytes."""
    rows = np.asarray(X)
    if rows.ndim < 2:
        raise InputError(f"data.X must hold rows (n, *row_shape), got shape {rows.shape}")
    labels = None if y is None else np.asarray(y)
    if labels is not None and labels.shape[:1] != rows.shape[:1]:
        raise InputError(f"data.y has {labels.shape[:1]} label(s) for {rows.shape[0]} rows")
    digest = sha256_of_arrays(rows) if labels is None else sha256_of_arrays(rows, labels)
    return RawTable(rows, labels, default_feature_names(rows.shape[1:]),
                    None if labels is None else "y", digest)


def frame_sha256(frame: Any) -> str:
    """SHA-256 over a DataFrame's column names, dtypes and values, and its index (labels and
    names): a change to any value, column or row label changes it."""
    digest = hashlib.sha256(b"pandas.DataFrame;")
    for name, column in frame.items():
        digest.update(f"{name!r};".encode())
        digest.update(sha256_of_arrays(column.to_numpy(), extra=str(column.dtype)).encode())
    digest.update(f"index;{list(frame.index.names)!r};".encode())
    digest.update(sha256_of_arrays(np.asarray(frame.index.tolist(), dtype=object)).encode())
    return digest.hexdigest()


def _from_frame(frame: Any, target: str | None, what: str, digest: str) -> RawTable:
    """The rows of ``frame`` (``what`` names it in errors), nullable columns as NaN
    (:func:`~xaudit.tables.as_rows`); ``target`` is taken out as the labels."""
    if frame.shape[0] == 0:
        raise InputError(f"{what} has no rows")
    y = None
    if target is not None:
        if target not in frame.columns:
            raise InputError(
                f"{what} has no target column {target!r}; columns are "
                f"{', '.join(map(str, frame.columns))}"
            )
        y = as_rows(frame.pop(target))
    return RawTable(as_rows(frame), y, tuple(map(str, frame.columns)), target, digest)


def _read_npz(path: Path, digest: str) -> RawTable:
    arrays = read_npz(path)
    if "X" not in arrays:
        raise InputError(f"{path}: an NPZ data file needs an array named 'X'")
    X = arrays["X"]
    y = arrays.get("y")
    names = arrays["feature_names"].tolist() if "feature_names" in arrays else None
    return RawTable(
        X, y, tuple(map(str, names or default_feature_names(X.shape[1:]))), "y", digest
    )


def _read_sklearn(name: str) -> RawTable:
    if name not in SKLEARN_DATASETS:
        raise InputError(
            f"unknown scikit-learn dataset {name!r}; shipped ones are "
            f"{', '.join(SKLEARN_DATASETS)}"
        )
    datasets = import_from_extra("sklearn.datasets", "sklearn", f"the dataset sklearn:{name}")
    bunch = getattr(datasets, f"load_{name}")()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target)
    names = tuple(map(str, getattr(bunch, "feature_names", default_feature_names(X.shape[1:]))))
    return RawTable(X, y, names, "target", sha256_of_arrays(X, y, extra=f"sklearn:{name}"))


def source_extra(source: str) -> str | None:
    """The extra that reading ``source`` needs (``None``: the core reads it)."""
    if source.startswith("sklearn:"):
        return "sklearn"
    suffix = Path(source).suffix
    return {".csv": "data", ".parquet": "parquet"}.get(suffix)


def reshape_rows(table: RawTable, shape: Sequence[int]) -> RawTable:
    """Rows reshaped to ``shape`` (same number of values per row), named by flat index."""
    size = int(np.prod(table.X.shape[1:]))
    if int(np.prod(shape)) != size or any(int(s) <= 0 for s in shape):
        raise InputError(f"rows have {size} values each; cannot reshape them to {list(shape)}")
    X = table.X.reshape(table.X.shape[0], *map(int, shape))
    return dataclasses.replace(table, X=X, feature_names=default_feature_names(X.shape[1:]))


def select_features(table: RawTable, features: Sequence[str] | None) -> RawTable:
    """Keep only ``features`` (in that order); unknown names are an error."""
    if not features:
        return table
    unknown = [f for f in features if f not in table.feature_names]
    if unknown:
        raise InputError(
            f"unknown feature(s) {', '.join(unknown)}; available: {', '.join(table.feature_names)}"
        )
    columns = [table.feature_names.index(f) for f in features]
    return dataclasses.replace(table, X=table.X[:, columns], feature_names=tuple(features))


def split_rows(n: int, test_size: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into sorted train and test indices."""
    if test_size <= 0:
        rows = np.arange(n)
        return rows, rows
    order = rng.permutation(n)
    n_test = max(1, round(n * test_size))
    if n_test >= n:
        raise InputError(f"test_size {test_size} leaves no training rows out of {n}")
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def choose_rows(
    pool: np.ndarray, rows: Sequence[int] | None, n: int | None, method: BackgroundMethod,
    rng: np.random.Generator, what: str,
) -> np.ndarray:
    """Indices for explained rows or background: explicit ``rows``, or ``n`` from ``pool``."""
    if rows is not None:
        chosen = np.asarray(rows, dtype=np.int64)
        outside = [int(r) for r in chosen if r not in set(pool.tolist())]
        if outside:
            raise InputError(
                f"{what}: row(s) {outside[:5]} are not in the pool of {pool.size} rows "
                "they are drawn from"
            )
        return chosen
    take = pool.size if n is None else min(n, pool.size)
    if method == "first":
        return pool[:take]
    return np.sort(rng.choice(pool, size=take, replace=False))


MAX_REFERENCE_FEATURES = 1000
"""Tabular data with more columns (pixels, tokens) records no per-feature reference."""


def background_means(background: np.ndarray | None, names: Sequence[str],
                     categorical: Sequence[str] = ()) -> dict[str, float]:
    """The mean of each numeric feature over the background rows: the reference an
    adverse-action statement's direction is judged against (a value above it is ``high``).

    The mean, not the median, because it is what additive attributions measure from: for a
    linear model, interventional SHAP gives ``w_j (x_j - E[x_j])`` (Lundberg and Lee 2017), so a
    feature pushes the output up exactly when its value is on the side of the background mean
    its weight favours. Empty for non-tabular data (more than two axes, or more than
    :data:`MAX_REFERENCE_FEATURES` columns) and without a background; categorical and
    non-numeric columns are left out.
    """
    if background is None or background.ndim != 2 or len(names) != background.shape[1] \
            or background.shape[1] > MAX_REFERENCE_FEATURES or background.shape[0] == 0:
        return {}
    means = {}
    for j, name in enumerate(names):
        if name in categorical:
            continue
        try:
            column = np.asarray(background[:, j], dtype=np.float64)
        except (TypeError, ValueError):
            continue
        finite = column[np.isfinite(column)]
        if finite.size:
            means[name] = float(finite.mean())
    return means
