"""Fonts inlined in the HTML report: DejaVu subsets as ``data:`` URIs, so it renders offline.

The DejaVu fonts come with matplotlib (which draws the figures), so they are present wherever
the report can be rendered. Each font is cut down to the characters the page uses, with the
font's own timestamps kept, so the same page gives the same bytes.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

from markupsafe import Markup

FACES = (
    ("DejaVu Sans", "normal", "DejaVuSans.ttf"),
    ("DejaVu Sans", "bold", "DejaVuSans-Bold.ttf"),
    ("DejaVu Sans Mono", "normal", "DejaVuSansMono.ttf"),
)


DROPPED = ("GSUB", "GPOS", "GDEF", "kern", "FFTM")
"""Shaping and kerning tables: a report's Latin text and numbers render fine without them."""


def _font_folder() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@lru_cache(maxsize=32)
def _subset(file_name: str, characters: str) -> str:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(str(_font_folder() / file_name), recalcTimestamp=False, lazy=True)
    for tag in DROPPED:  # removed before they are parsed: that parse is most of the time
        if tag in font:
            del font[tag]
    options = subset.Options()
    options.hinting = False
    options.desubroutinize = True
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted({ord(c) for c in characters} | {0x20}))
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return base64.b64encode(out.getvalue()).decode("ascii")


def font_faces(text: str) -> Markup:
    """``@font-face`` rules for the fonts, subset to the characters of ``text``."""
    characters = "".join(sorted(set(text) - {"\n", "\r", "\t"}))
    rules = []
    for family, weight, file_name in FACES:
        data = _subset(file_name, characters)
        rules.append(f'@font-face {{ font-family: "{family}"; font-weight: {weight}; '
                     f'src: url("data:font/ttf;base64,{data}") format("truetype"); }}')
    return Markup("\n".join(rules))  # noqa: S704 - built from base64 and constants only
