"""Text from data, models, suites and exceptions, made safe to show in any output.

Names and messages reach consoles and CI logs, ``junit.xml``, ``summary.md``, the HTML and PDF
report and figures. Some characters must not pass through as they are:

- C0 and C1 control characters (``\\x00``-``\\x1f`` but tab and line feed, ``\\x7f``-``\\x9f``):
  XML 1.0 cannot carry most of them at all (a parser refuses the whole ``junit.xml``), and ESC
  (``\\x1b``) starts the ANSI sequences that recolour, move the cursor in or clear a terminal;
- the bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F,
  U+202A-U+202E, U+2066-U+2069), which make text display in another order than it is read
  ("Trojan Source", Boucher and Anderson, USENIX Security 2023), and the Unicode line and
  paragraph separators U+2028 and U+2029;
- the noncharacters U+FFFE and U+FFFF and unpaired surrogates, which XML refuses and UTF-8
  cannot encode.

Each is replaced by a visible escape (``\\x1b``, ``\\u202e``), so that a reader sees that it was
there and what it was. What remains is valid in XML 1.0, Markdown and HTML text.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``str(text)`` with each unsafe character (see the module) replaced by its visible escape;
    tabs and line feeds are kept."""
    return _UNSAFE.sub(_escape, str(text))


def one_line(text: object) -> str:
    """:func:`printable` on one line: every run of whitespace (line breaks included) becomes one
    space, so a name or message cannot start a line of its own in a log or a table."""
    return " ".join(printable(text).split())
