"""Which model outputs an explanation covers.

``target`` is ``"all"``, ``"predicted"`` (each row's arg-max output), an output index, an output
name, or a list of indices/names. It resolves to an integer array ``(n, k)``: row ``r``'s slot ``j``
on the explanation's outputs axis holds output ``indices[r, j]`` of the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InputError

Target = str | int | Sequence[int | str]


@dataclass(frozen=True)
class TargetSelection:
    """Resolved targets: per-row output indices ``(n, k)`` and a name for each slot."""

    indices: np.ndarray
    names: tuple[str, ...]
    pending: bool = False
    """``"predicted"`` targets not chosen yet: an explainer that declares
    ``finds_predicted`` picks each row's arg-max output from its own forward pass and writes it
    into ``indices`` (which start at -1), saving the host a forward pass over every row."""

    @property
    def n_slots(self) -> int:
        """Length of the outputs axis of the explanation."""
        return len(self.names)

    def take(self, outputs: np.ndarray) -> np.ndarray:
        """Select the targeted columns of model outputs ``(n, m)`` -> ``(n, k)``."""
        return np.take_along_axis(outputs, self.indices, axis=1)


def _index_of(item: int | str, output_names: Sequence[str]) -> int:
    if isinstance(item, bool):
        raise InputError(f"target {item!r} is not an output index or name")
    if isinstance(item, int | np.integer):
        index = int(item)
        if not -len(output_names) <= index < len(output_names):
            raise InputError(
                f"target index {index} is out of range for {len(output_names)} output(s) "
                f"({', '.join(output_names)})"
            )
        return index % len(output_names)
    if item in output_names:
        return list(output_names).index(item)
    raise InputError(
        f"target {item!r} is not an output of the model; outputs are {', '.join(output_names)}"
    )


def pending_predicted(n_rows: int) -> TargetSelection:
    """``"predicted"`` targets for ``n_rows`` rows, left to the explainer to fill."""
    return TargetSelection(np.full((n_rows, 1), -1, dtype=np.int64), ("predicted",), pending=True)


def resolve_targets(
    target: Target, output_names: Sequence[str], n_rows: int,
    outputs: np.ndarray | None = None,
) -> TargetSelection:
    """Resolve ``target`` against the model's outputs for ``n_rows`` rows.

    ``outputs`` (the model's ``(n, m)`` predictions) is needed for ``"predicted"`` only.
    """
    names = tuple(output_names)
    n = n_rows
    if target == "predicted":
        if outputs is None:
            raise InputError("target 'predicted' needs the model outputs for the explained rows")
        chosen = np.argmax(outputs, axis=1)[:, None]
        return TargetSelection(chosen.astype(np.int64), ("predicted",))
    if target == "all":
        columns = list(range(len(names)))
    elif isinstance(target, str | int | np.integer):
        columns = [_index_of(target, names)]
    else:
        columns = [_index_of(item, names) for item in target]
        if not columns:
            raise InputError("target list is empty")
    indices = np.empty((n, len(columns)), dtype=np.int64)
    indices[:] = columns
    return TargetSelection(indices, tuple(names[c] for c in columns))
