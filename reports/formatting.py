"""How the report prints values: significant digits, signs, percentages, compact JSON, hashes.

Kept apart from the Jinja2 environment (:mod:`xaudit.reports.templating`, which registers these as
filters) so that code which only formats numbers, such as the technical appendix's fact rows, does
not import Jinja2 when the host is created.
"""

from __future__ import annotations

import json
import math
from typing import Any


def fmt_number(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; ``n/a`` for None and NaN."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    return f"{number:.{digits}g}"


def fmt_signed(value: Any, digits: int = 3) -> str:
    """A number with an explicit sign."""
    if value is None:
        return "n/a"
    return f"{float(value):+.{digits}g}"


def fmt_percent(value: Any, digits: int = 0) -> str:
    """A fraction as a percentage."""
    if value is None:
        return "n/a"
    return f"{100 * float(value):.{digits}f}%"


def fmt_json(value: Any) -> str:
    """Compact, key-sorted JSON (parameters, details)."""
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def short_hash(value: Any, length: int = 16) -> str:
    """The first ``length`` characters of a hex digest."""
    return str(value or "")[:length] or "n/a"
