"""Adverse decisions, their principal reasons, a plain-language account per subject, and the
segments subjects fall in.

Principal reasons follow the practice of adverse-action notices under Regulation B
(12 CFR 1002.9(b)(2) and its official interpretation: specific reasons, at most four are
meaningful): the features whose attributions pushed the output furthest towards the adverse
side, only among features the model actually uses (non-zero attribution somewhere), each mapped
through the documentation's reason-code dictionary.

A statement is chosen by the feature value's direction against the reference, the background
mean (:func:`xaudit.data.background_means`): ``high`` above it, ``low`` below it; a directional
code has no statement for a value on the other side, or exactly at the mean, or without a
known reference, so a statement never contradicts the data. A plain (directionless) statement
is issued for any value, with the measured direction printed beside it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..explanation import Explanation
from ..suite import DecisionSpec, ReasonCode
from .analysis import Outputs, numeric_column

MAX_REASONS = 4


Direction = Literal["high", "low", "at"]


@dataclass(frozen=True)
class Reason:
    """One principal reason: the feature, its value, its push, and the statement.

    ``statement`` is the documented text issued, or a placeholder saying which statement is
    missing (``coded`` is then false); ``direction`` is the value's side of ``reference`` (the
    background mean), ``None`` when either is not a number."""

    feature: str
    value: str
    contribution: float
    statement: str
    coded: bool
    direction: Direction | None = None
    reference: float | None = None


@dataclass
class Subject:
    """One explained row as the local section presents it."""

    position: int
    row_id: int
    output: float | None
    adverse: bool | None
    paragraph: str = ""


def segment_labels(column: np.ndarray, bins: Sequence[float] | None,
                   categorical: bool) -> list[str]:
    """Each row's segment of a ``documentation.segments`` feature: its category, or the bin of
    its value (``bins`` edges, else the quartiles of ``column``; six or fewer distinct numbers
    count as categories), written ``[low, high)`` (the last bin closed)."""
    values = numeric_column(column)
    if values is None or categorical or (bins is None and np.unique(values).size <= 6):
        return [value_text(v) for v in column.tolist()]
    edges = np.asarray(bins if bins is not None else
                       np.unique(np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])))
    if edges.size < 2:
        return [value_text(v) for v in column.tolist()]
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)
    return [f"[{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if i == edges.size - 2 else ')'}"
            for i in index]


def segment_order(labels: Sequence[str], column: np.ndarray) -> list[str]:
    """The distinct segment ``labels`` in the order of the values they hold: numeric bins from
    the lowest up (``[-0.2, -0.05)`` before ``[-0.05, 0.05)``, which a sort of the text would
    swap), categories by their numeric value when they have one, else by name."""
    values = numeric_column(column)
    distinct = sorted(set(labels))
    if values is None or not np.all(np.isfinite(values)):
        return distinct
    label_array = np.asarray(labels, dtype=object)
    return sorted(distinct, key=lambda label: float(values[label_array == label].min()))


def value_text(value: object) -> str:
    """An input value for prose and tables."""
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)


def decision_slots(e: Explanation, model_outputs: Sequence[str],
                   decision: DecisionSpec) -> np.ndarray:
    """Per row, the slot of the outputs axis holding the decision's output (-1: not explained);
    ``model_outputs`` are the model's output names."""
    model_names = list(model_outputs)
    if isinstance(decision.output, int):
        index = decision.output
    elif decision.output in model_names:
        index = model_names.index(decision.output)
    elif decision.output in e.output_names:
        slot = e.output_names.index(decision.output)
        return np.full(e.n_rows, slot)
    else:
        return np.full(e.n_rows, -1)
    hits = e.target_indices == index
    return np.where(hits.any(axis=1), hits.argmax(axis=1), -1)


def is_adverse(value: float, decision: DecisionSpec) -> bool:
    """Whether an output value is on the adverse side of the threshold."""
    if decision.adverse == "above":
        return value > decision.threshold
    return value < decision.threshold


def adverse_pushes(e: Explanation, row: int, slot: int, decision: DecisionSpec,
                   used: np.ndarray, excluded: Collection[str] = ()) -> list[int]:
    """Indices of the used features (not ``excluded``) pushing row ``row`` towards the adverse
    side, furthest first (ties by feature order)."""
    sign = 1.0 if decision.adverse == "above" else -1.0
    push = sign * e.values[row, ..., slot].reshape(-1)
    allowed = np.array([name not in excluded for name in e.feature_names], dtype=bool)
    candidates = np.flatnonzero((push > 0) & used & allowed)
    return [int(i) for i in candidates[np.lexsort((candidates, -push[candidates]))]]


def principal_reasons(e: Explanation, row: int, slot: int, decision: DecisionSpec,
                      used: np.ndarray, codes: Mapping[str, ReasonCode],
                      references: Mapping[str, float] | None = None,
                      excluded: Collection[str] = ()) -> list[Reason]:
    """Up to four used features (not ``excluded``) pushing row ``row`` furthest towards the
    adverse side, each with the statement its direction against ``references`` allows."""
    reasons = []
    for i in adverse_pushes(e, row, slot, decision, used, excluded)[:MAX_REASONS]:
        name = e.feature_names[i]
        reference = (references or {}).get(name)
        direction = value_direction(e.inputs[row, i], reference)
        statement = statement_for(codes.get(name), direction)
        reasons.append(Reason(name, value_text(e.inputs[row, i]),
                              float(e.values[row, i, slot]),
                              statement or missing_statement(name, codes.get(name), direction),
                              statement is not None, direction, reference))
    return reasons


def value_direction(value: object, reference: float | None) -> Direction | None:
    """``high``/``low``/``at``: the side of ``reference`` a numeric ``value`` is on; ``None``
    when either is not a number."""
    if reference is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not np.isfinite(number):
        return None
    return "high" if number > reference else "low" if number < reference else "at"


def statement_for(code: ReasonCode | None, direction: Direction | None) -> str | None:
    """The documented statement to issue: a plain one whatever the direction; a directional
    one only for a value known to be on its side."""
    if code is None or isinstance(code, str):
        return code
    if direction == "high":
        return code.high
    if direction == "low":
        return code.low
    return None


def missing_statement(name: str, code: ReasonCode | None, direction: Direction | None) -> str:
    """The placeholder printed where no documented statement can be issued, saying why."""
    if code is None:
        return f"{name} (no reason code documented)"
    if direction in ("high", "low"):
        return f"{name} (no statement documented for a {direction} value)"
    if direction == "at":
        return f"{name} (the value equals the background mean: neither high nor low)"
    return f"{name} (direction unknown: no numeric value or background mean to compare)"


def direction_text(reason: Reason) -> str:
    """``above mean 0.0012`` and the like (the background mean), for print beside a
    statement."""
    if reason.direction is None or reason.reference is None:
        return "no mean to compare with"
    side = {"high": "above", "low": "below", "at": "equal to"}[reason.direction]
    return f"{side} mean {reason.reference:.4g}"


def paragraph(e: Explanation, row: int, row_id: int, slot: int, outputs: Outputs | None,
              decision: DecisionSpec | None, adverse: bool | None) -> str:
    """What drove this subject's output and, for a decision, what would change it."""
    output = e.output_names[slot]
    phi = e.values[row, ..., slot].reshape(-1)
    order = np.lexsort((np.arange(phi.size), -np.abs(phi)))
    up = [i for i in order if phi[i] > 0][:2]
    down = [i for i in order if phi[i] < 0][:2]

    def named(indices: list[int]) -> str:
        return " and ".join(f"{e.feature_names[i]} = {value_text(e.inputs[row, i])} "
                            f"({phi[i]:+.3g})" for i in indices)

    text = [f"Subject {row_id}:"]
    if outputs is not None:
        value = outputs.values[row, slot]
        base = "" if e.base_values is None else \
            f" against a background average of {e.base_values[row, slot]:.4g}"
        text.append(f"the model gave {output} = {value:.4g}{base}.")
    else:
        text.append(f"the attributions to {output} are as follows.")
    if up:
        text.append(f"It was raised most by {named(up)}.")
    if down:
        text.append(f"It was lowered most by {named(down)}.")
    if not up and not down:
        text.append("No feature moved it.")
    if decision is not None and adverse is not None and outputs is not None:
        text.append(_what_would_change(e, row, slot, outputs.values[row, slot], decision,
                                       adverse))
    return " ".join(text)


def _what_would_change(e: Explanation, row: int, slot: int, value: float,
                       decision: DecisionSpec, adverse: bool) -> str:
    side = "above" if decision.adverse == "above" else "below"
    if not adverse:
        return (f"The decision is not adverse: the output is not {side} the threshold "
                f"{decision.threshold:g}.")
    sign = 1.0 if decision.adverse == "above" else -1.0
    phi = e.values[row, ..., slot].reshape(-1)
    pushing = [i for i in np.lexsort((np.arange(phi.size), -sign * phi)) if sign * phi[i] > 0]
    moved = value
    for m, i in enumerate(pushing[:MAX_REASONS], start=1):
        moved -= phi[i]
        if not is_adverse(moved, decision):
            names = " and ".join(e.feature_names[j] for j in pushing[:m])
            return (f"The decision is adverse (output {side} {decision.threshold:g}). By these "
                    f"attributions, it would change if {names} did not contribute (took "
                    f"reference values), moving the output to about {moved:.4g}.")
    return (f"The decision is adverse (output {side} {decision.threshold:g}); removing the "
            f"{min(len(pushing), MAX_REASONS)} largest adverse contributions alone would not "
            "change it.")


def counterfactual_changes(e: Explanation, row: int, limit: int = 3) -> list[dict[str, Any]]:
    """The changed features and distance of each verified counterfactual among the first
    ``limit`` of ``row`` (``handoff.counterfactuals``)."""
    found = e.handoff.counterfactuals
    if found is None:
        return []
    tables = []
    for candidate, valid, distance in zip(found.rows[row][:limit], found.valid[row][:limit],
                                          found.distances[row][:limit], strict=True):
        changes = [{"feature": e.feature_names[i], "from": value_text(e.inputs[row, i]),
                    "to": value_text(candidate[i])}
                   for i in range(candidate.size) if str(candidate[i]) != str(e.inputs[row, i])]
        if valid and changes:
            tables.append({"changes": changes, "distance": float(distance)})
    return tables
