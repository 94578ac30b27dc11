"""Reading a suite's YAML within bounds, refusing what a careless or hostile file could hide.

A suite may arrive in a pull request, so its YAML is read as untrusted input:

- only YAML's safe tags (no Python objects), through libyaml when it is installed;
- at most :data:`MAX_BYTES` bytes of UTF-8 text, checked before anything is parsed;
- one streaming pass over the parser's events, before any node is built, bounds the nesting
  depth (:data:`MAX_DEPTH`), the number of nodes and the characters of text *after* alias
  expansion (:data:`MAX_NODES`, :data:`MAX_CHARS`), so that an alias bomb ("billion laughs":
  nine aliases of nine aliases of ...) is refused in milliseconds instead of being expanded
  into results.json, and an alias inside its own anchor (a recursive document) is refused
  instead of hanging a JSON encoder;
- a key given twice in one mapping is an error naming its path and both lines (YAML says keys
  are unique; PyYAML silently keeps the last, so ``threshold: -1, threshold: 1e9`` passed);
- numbers are read as YAML 1.2 does (``1e-6`` is a float, not the string PyYAML 1.1 makes of
  it), so that the suite schema can refuse a quoted ``"1e-6"`` without refusing ``1e-6``.

Every problem raises :class:`~xaudit.errors.SuiteError` (exit 4) with its path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Problem, SuiteError

MAX_BYTES = 1_048_576
"""Largest suite file read (1 MiB); real suites are a few kilobytes."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences, aliases expanded (real suites nest under 10)."""
MAX_NODES = 200_000
"""Most nodes (scalars, mappings, sequences) once every alias is expanded."""
MAX_CHARS = 4 * MAX_BYTES
"""Most characters of scalar text once every alias is expanded."""

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(_BaseLoader):  # type: ignore[misc]
    """PyYAML's safe loader with YAML 1.2 floats (``1e-6``, ``2E3``, ``.5e-1``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(raw: bytes, source: str) -> object:
    """The document in ``raw``, or :class:`SuiteError` naming what is wrong and where."""
    if len(raw) > MAX_BYTES:
        _refuse(source, "", f"the file is larger than {MAX_BYTES:,} bytes, the most a suite "
                "may have (long lists belong in a data file, not in the suite)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _refuse(source, "", f"not UTF-8 text (byte {exc.start}); save the suite as UTF-8")
    try:
        _check_shape(text, source)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            problems = _duplicate_keys(node, loader)
            if problems:
                raise SuiteError(problems, source)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        _refuse(source, "", f"not valid YAML: {exc}")
    except (ValueError, OverflowError) as exc:  # e.g. an integer of 5,000 digits
        _refuse(source, "", f"a value cannot be read: {str(exc).split(';')[0]}")


def _refuse(source: str, path: str, message: str) -> NoReturn:
    raise SuiteError([Problem(path, message)], source)


@dataclass
class _Size:
    """A node's size with every alias inside it expanded."""

    nodes: int = 1
    height: int = 0
    chars: int = 0
    """Characters of scalar text."""


@dataclass
class _Open:
    """A mapping or sequence whose end event has not come yet."""

    anchor: str | None
    size: _Size = field(default_factory=lambda: _Size(height=1))


@dataclass
class _Shape:
    """Running totals of the event pass."""

    source: str
    total: _Size = field(default_factory=lambda: _Size(nodes=0))
    anchors: dict[str, _Size] = field(default_factory=dict)
    stack: list[_Open] = field(default_factory=list)

    def count(self, size: _Size, event: Any) -> None:
        """A node of ``size`` starts (a collection) or comes whole (a scalar, an alias)."""
        self.total.nodes += size.nodes
        self.total.chars += size.chars
        where = _line(event)
        if self.total.nodes > MAX_NODES or self.total.chars > MAX_CHARS:
            _refuse(self.source, "", f"the document expands to more than {MAX_NODES:,} nodes "
                    f"or {MAX_CHARS:,} characters once aliases are expanded ({where}); "
                    "is it an alias bomb?")
        if len(self.stack) + size.height > MAX_DEPTH:
            _refuse(self.source, "", f"nesting deeper than {MAX_DEPTH} levels ({where})")

    def attach(self, size: _Size) -> None:
        """A finished node joins its open parent."""
        if self.stack:
            parent = self.stack[-1].size
            parent.nodes += size.nodes
            parent.chars += size.chars
            parent.height = max(parent.height, size.height + 1)


def _check_shape(text: str, source: str) -> None:
    """Depth, expanded size and recursion, from parser events alone (nothing is built)."""
    shape = _Shape(source)
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
            anchor = event.anchor
            if isinstance(event, yaml.ScalarEvent):
                size = _Size(chars=len(event.value))
                if anchor is not None:
                    shape.anchors[anchor] = size
            elif any(frame.anchor == anchor for frame in shape.stack):
                _refuse(source, "", f"alias *{anchor} lies inside its own anchor &{anchor} "
                        f"({_line(event)}): a recursive document has no end")
            else:
                size = shape.anchors.get(str(anchor), _Size())
            shape.count(size, event)
            shape.attach(size)
        elif isinstance(event, yaml.CollectionStartEvent):
            shape.count(_Size(height=1), event)
            shape.stack.append(_Open(event.anchor))
        elif isinstance(event, yaml.CollectionEndEvent):
            done = shape.stack.pop()
            shape.attach(done.size)
            if done.anchor is not None:
                shape.anchors[done.anchor] = done.size


def _line(event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return "at the start" if mark is None else f"line {mark.line + 1}"


def _duplicate_keys(root: Node, loader: Any) -> list[Problem]:
    """Every key given twice in one mapping, with its path; aliased nodes are walked once."""
    problems: list[Problem] = []
    seen: set[int] = set()
    pending: list[tuple[Node, str]] = [(root, "")]
    while pending:
        node, path = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            pending += [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        elif isinstance(node, MappingNode):
            lines: dict[object, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                    pending.append((value_node, path))
                    continue
                key = loader.construct_object(key_node)
                where = f"{path}.{key}" if path else str(key)
                line = key_node.start_mark.line + 1
                try:
                    first = lines.get(key)
                    lines.setdefault(key, line)
                except TypeError:  # an unhashable key: the constructor reports it
                    continue
                if first is not None:
                    lines_text = f"line {line}" if first == line else f"lines {first} and {line}"
                    problems.append(Problem(where, f"key {key!r} is given twice ({lines_text}); "
                                            "give each key once"))
                pending.append((value_node, where))
    return sorted(problems, key=lambda p: p.path)
