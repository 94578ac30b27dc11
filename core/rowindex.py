"""The caller's labels of the explained rows: a pandas index kept through an explanation.

``xaudit.explain(model, df)`` remembers ``df.index`` as a :class:`RowIndex`;
``Explanation.to_frame()`` and ``to_shap()`` label rows with it, slicing an explanation slices
it, and ``results.json`` stores it. Labels are stored JSON-ready: integers, floats, strings and
booleans as they are, tuples of them for a ``MultiIndex``; any other label (a timestamp, say)
is stored as its string (``str(label)``), so it comes back from results.json as that string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError

Label = int | float | str | bool | tuple[Any, ...]


def _plain(label: Any) -> Any:
    """One label as a JSON-ready scalar (or a tuple of them)."""
    if isinstance(label, tuple):
        return tuple(_plain(part) for part in label)
    if isinstance(label, np.generic):
        label = label.item()
    if isinstance(label, bool | int | float | str):
        return label
    return str(label)


@dataclass(frozen=True)
class RowIndex:
    """Labels of ``n`` explained rows and the index's level names (one per level)."""

    labels: tuple[Label, ...]
    names: tuple[str | None, ...] = (None,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(_plain(label) for label in self.labels))
        object.__setattr__(self, "names", tuple(
            None if name is None else str(name) for name in self.names) or (None,))

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def of(cls, X: Any) -> RowIndex | None:
        """The index of a pandas DataFrame or Series ``X``; ``None`` for anything else."""
        index = getattr(X, "index", None)
        return cls._from_pandas(index) if _is_index(index) else None

    @classmethod
    def given(cls, labels: Sequence[Any] | Any, n: int) -> RowIndex:
        """``labels`` (a sequence, a pandas index or a RowIndex) for ``n`` rows, or
        InputError."""
        if isinstance(labels, RowIndex):
            index = labels
        else:
            index = cls._from_pandas(labels) if _is_index(labels) else cls(tuple(labels))
        if len(index) != n:
            raise InputError(f"row_index has {len(index)} label(s) for {n} explained row(s)")
        return index

    @classmethod
    def _from_pandas(cls, index: Any) -> RowIndex:
        return cls(tuple(index.tolist()), tuple(index.names))

    def take(self, rows: np.ndarray) -> RowIndex:
        """The labels of ``rows`` (positions), in that order."""
        return RowIndex(tuple(self.labels[int(r)] for r in rows), self.names)

    def to_pandas(self) -> Any:
        """A ``pandas.Index`` (a ``MultiIndex`` for tuple labels with several names)."""
        import pandas as pd

        if len(self.names) > 1:
            return pd.MultiIndex.from_tuples(list(self.labels), names=list(self.names))
        return pd.Index(list(self.labels), name=self.names[0])

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready record (tuples as lists)."""
        return {"labels": [list(v) if isinstance(v, tuple) else v for v in self.labels],
                "names": list(self.names)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RowIndex:
        """Inverse of :meth:`to_record`."""
        labels = tuple(tuple(v) if isinstance(v, list) else v for v in record["labels"])
        return cls(labels, tuple(record["names"]))


def _is_index(obj: Any) -> bool:
    """Whether ``obj`` looks like a pandas ``Index`` (level names and ``tolist``)."""
    return obj is not None and hasattr(obj, "names") and hasattr(obj, "tolist")
