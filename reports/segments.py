"""How segment groups and coded values are named and ordered in the report.

Groups are listed in their natural order: numeric bins (``[low, high)``) by their lower edge,
numbers by value, text alphabetically; sorting the labels as text would put ``[-0.05, 0.05)``
before ``[-0.2, -0.05)``. A coded value (``-0.04464``) is shown through the documentation's
``value_labels`` for its feature: the code's text first, then, for numeric codes, the closest
code within a relative tolerance of :data:`CODE_TOLERANCE` (codes written to four or five
significant digits match the stored floats, ``-0.04464`` matches ``-0.0446416``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

CODE_TOLERANCE = 1e-3


def group_order(labels: Iterable[str]) -> list[str]:
    """The distinct ``labels`` in natural order: bins by lower edge, numbers by value, text
    alphabetically (after the numbers)."""
    return sorted(set(labels), key=_order_key)


def _order_key(label: str) -> tuple[int, float, str]:
    number = _number(label.lstrip("[(").split(",", 1)[0])
    return (0, number, label) if number is not None else (1, 0.0, label)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def value_label(labels: Mapping[str, str] | None, value: object) -> str | None:
    """The documented label of ``value`` (its text, or the closest numeric code within the
    tolerance), or ``None`` when it has none."""
    if not labels:
        return None
    text = str(value)
    if text in labels:
        return labels[text]
    number = value if isinstance(value, float | int) and not isinstance(value, bool) \
        else _number(text)
    if number is None:
        return None
    close = [(abs(float(number) - code), code) for code in (_number(k) for k in labels)
             if code is not None and math.isclose(float(number), code, rel_tol=CODE_TOLERANCE)]
    if not close:
        return None
    best = min(close)[1]
    return next(v for k, v in labels.items() if _number(k) == best)


def shown_value(labels: Mapping[str, str] | None, value: object) -> str:
    """``value`` as the report shows it: its documented label and code, or the code alone."""
    label = value_label(labels, value)
    return str(value) if label is None else f"{label} ({value})"
