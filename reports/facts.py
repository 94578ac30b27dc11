"""Parameters, computation facts and check details as labelled rows a reader can scan.

Explainers and checks leave plain JSON-able values (numbers, flags, lists, small dicts) in their
``params``, ``metadata`` and ``details``. The report prints each as one labelled row: numbers
with four significant digits, flags as yes/no, a list with one measurement per feature
labelled by the feature's name, other lists shortened. The exact values stay in results.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .formatting import fmt_number

LIST_ITEMS = 12
"""Items of a list printed before the rest is left to results.json."""


def fact_rows(values: dict[str, Any], feature_names: Sequence[str] = ()) -> list[
        tuple[str, str]]:
    """``(label, text)`` per entry of ``values``, sorted by key; a key's underscores read as
    spaces."""
    return [(key.replace("_", " "), fact_text(value, feature_names))
            for key, value in sorted(values.items())]


def fact_text(value: Any, feature_names: Sequence[str] = ()) -> str:
    """One value as text; a list of floats as long as ``feature_names`` (a per-feature
    measurement) is labelled by them; integers (seeds, counts) are never taken for one."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return fmt_number(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fact_text(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list | tuple):
        items = list(value)
        if feature_names and len(items) == len(feature_names) and all(
                isinstance(v, float) for v in items):
            return "; ".join(f"{name} {fact_text(v)}"
                             for name, v in zip(feature_names, items, strict=True))
        shown = ", ".join(fact_text(v) for v in items[:LIST_ITEMS])
        if len(items) > LIST_ITEMS:
            shown += f", … ({len(items)} values, all in results.json)"
        return f"[{shown}]"
    return str(value)
