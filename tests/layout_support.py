"""Read WeasyPrint's layout of a rendered report: tables that leave the page, page fill.

WeasyPrint lays every page out as a tree of boxes (``document.pages[i]._page_box``); a box's
border box is ``border_box_x()``/``border_box_y()`` and ``border_width()``/``border_height()``
in CSS pixels. The page's content box is the area inside its margins. Reading the boxes checks
what the PDF shows, not what the CSS asks for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

TOLERANCE_PX = 0.5
"""Rounding slack when comparing a box's edge with the page's."""


def boxes(box: Any) -> Iterator[Any]:
    """``box`` and every box below it, depth first."""
    yield box
    for child in getattr(box, "children", None) or ():
        yield from boxes(child)


@dataclass(frozen=True)
class Overflow:
    """A box inside a table that ends past the page's content box."""

    page: int
    """1-based page number."""
    table: str
    """The table's class attribute (or its caption) to find it in the template."""
    kind: str
    excess_px: float
    text: str


def _content_box(page_box: Any) -> tuple[float, float]:
    left = float(page_box.content_box_x())
    return left, left + float(page_box.width)


def _label(table: Any) -> str:
    element = getattr(table, "element", None)
    if element is not None and element.get("class"):
        return str(element.get("class"))
    return str(getattr(table, "element_tag", "table"))


def table_overflows(document: Any) -> list[Overflow]:
    """Every box of every table (the table, its cells, the text inside them) whose right or
    left edge lies outside the page's content box."""
    found: list[Overflow] = []
    for number, page in enumerate(document.pages, start=1):
        page_box = page._page_box
        left, right = _content_box(page_box)
        for box in boxes(page_box):
            if type(box).__name__ != "TableBox":
                continue
            label = _label(box)
            for inner in boxes(box):
                x0 = float(inner.border_box_x())
                x1 = x0 + float(inner.border_width())
                excess = max(x1 - right, left - x0)
                if excess > TOLERANCE_PX:
                    found.append(Overflow(number, label, type(inner).__name__, excess,
                                          str(getattr(inner, "text", ""))[:60]))
    return found


def page_fill(document: Any) -> list[float]:
    """Per page, the share of the content box's height that its content reaches: the lowest
    bottom edge of any box with content (text, images, table rows) over the content height;
    the running header and footer (margin boxes) do not count."""
    fills: list[float] = []
    for page in document.pages:
        page_box = page._page_box
        top = float(page_box.content_box_y())
        height = float(page_box.height)
        bottom = top
        body = [child for child in page_box.children if type(child).__name__ != "MarginBox"]
        for box in (inner for child in body for inner in boxes(child)):
            name = type(box).__name__
            if name in ("TextBox", "InlineReplacedBox", "BlockReplacedBox", "TableRowBox"):
                bottom = max(bottom, float(box.border_box_y()) + float(box.border_height()))
        fills.append(min(1.0, (bottom - top) / height) if height > 0 else 0.0)
    return fills
