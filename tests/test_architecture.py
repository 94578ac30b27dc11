"""The package's shape, checked from its source and from a fresh interpreter.

* the import graph of ``xaudit`` (built statically from every module under ``core/``,
  ``adapters/``, ``plugins/`` and ``reports/``, imports inside functions included) has no cycle:
  a cycle "broken" by a function-level import still couples the modules and breaks the day the
  import moves;
* creating the host imports no heavy framework or numerical library: a run that uses no
  statistics, trees or torch does not pay for them.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xaudit.host import AUTOLOAD_ENV, BLOCK_ENV

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"core": "xaudit", "adapters": "xaudit.adapters", "plugins": "xaudit.plugins",
           "reports": "xaudit.reports"}
"""Source folder -> the import package it becomes (as setup.py maps them)."""

HEAVY = ("scipy", "torch", "sklearn", "numba", "pandas", "onnx", "onnxruntime", "matplotlib",
         "weasyprint", "jinja2")
"""Top-level packages that creating a host must not import."""


# --------------------------------------------------------------------------------------------
# The static import graph


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``where`` (``file:line``)."""

    source: str
    target: str
    where: str


def source_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package by import name, found from the source folders."""
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements at every level, except the bodies of ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` if it is a module of the package, else its nearest enclosing one (or None)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(modules: dict[str, Path], root: Path = ROOT) -> list[Edge]:
    """Edges from each module to the package modules it imports.

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``;
    relative imports are resolved; the implicit imports of parent packages' ``__init__`` are
    not edges.
    """
    edges = []
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _runtime_imports(tree):
            where = f"{path.relative_to(root)}:{node.lineno}"
            if isinstance(node, ast.Import):
                targets = [_known(alias.name, modules) for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [_known(f"{base}.{alias.name}", modules)
                           if f"{base}.{alias.name}" in modules else _known(base, modules)
                           for alias in node.names]
            edges += [Edge(module, target, where) for target in targets
                      if target is not None and target != module]
    return edges


def strongly_connected(nodes: list[str], edges: list[Edge]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, each sorted."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges:
        succ[edge.source].append(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(succ[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(succ[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return sorted(found)


def shortest_cycle(start: str, component: set[str], edges: list[Edge]) -> list[Edge]:
    """The shortest chain of imports from ``start`` back to itself inside ``component``."""
    succ: dict[str, list[Edge]] = {}
    for edge in edges:
        if edge.source in component and edge.target in component:
            succ.setdefault(edge.source, []).append(edge)
    came: dict[str, Edge] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for edge in succ.get(node, []):
            if edge.target == start:
                chain = [edge]
                while chain[0].source != start:
                    chain.insert(0, came[chain[0].source])
                return chain
            if edge.target not in came:
                came[edge.target] = edge
                queue.append(edge.target)
    raise AssertionError(f"{start} is in no cycle")  # unreachable for a component's member


def describe_cycles(components: list[list[str]], edges: list[Edge]) -> list[str]:
    """Each component's cycles (the shortest through each member, deduplicated) as chains."""
    lines = []
    for component in components:
        seen: set[frozenset[tuple[str, str]]] = set()
        for member in component:
            chain = shortest_cycle(member, set(component), edges)
            key = frozenset((e.source, e.target) for e in chain)
            if key not in seen:
                seen.add(key)
                lines.append(" -> ".join([chain[0].source, *(
                    f"{e.target} ({e.where})" for e in chain)]))
    return lines


def test_source_folders_hold_the_package() -> None:
    modules = source_modules()
    assert {"xaudit", "xaudit.api", "xaudit.engine", "xaudit.runner", "xaudit.multi_input",
            "xaudit.adapters.torch.options", "xaudit.adapters.onnx.options",
            "xaudit.adapters.trees.extract", "xaudit.plugins.shapley.tree",
            "xaudit.reports"} <= set(modules)


def test_the_cycle_finder_names_each_cycle(tmp_path: Path) -> None:
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "core" / "a.py").write_text("from . import b\n")
    (tmp_path / "core" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n"
        "def f():\n    from xaudit.adapters.x import thing\n")
    (tmp_path / "core" / "c.py").write_text("from .a import name\n")
    (tmp_path / "adapters" / "x.py").write_text("from ..a import other\nimport xaudit.c\n")
    (tmp_path / "adapters" / "y.py").write_text("from xaudit import a\n")  # one way only
    modules = source_modules(tmp_path)
    edges = import_edges(modules, tmp_path)
    components = strongly_connected(sorted(modules), edges)
    assert components == [["xaudit.a", "xaudit.adapters.x", "xaudit.b", "xaudit.c"]]
    assert describe_cycles(components, edges)[0] == (
        "xaudit.a -> xaudit.b (core/a.py:1) -> xaudit.adapters.x (core/b.py:5) "
        "-> xaudit.a (adapters/x.py:1)")


def test_the_package_has_no_import_cycle() -> None:
    modules = source_modules()
    edges = import_edges(modules)
    cycles = describe_cycles(strongly_connected(sorted(modules), edges), edges)
    assert not cycles, "import cycles (module -> imported module (where)):\n" + "\n".join(cycles)


# --------------------------------------------------------------------------------------------
# Creating a host stays light


@dataclass(frozen=True)
class HeavyImport:
    """How a heavy package came to be imported while a host was created."""

    first: str
    """The module whose import statement loaded it."""
    askers: frozenset[str]
    """Every xaudit module with an import statement that asked for it."""


@pytest.fixture(scope="module")
def imported_by_host() -> dict[str, HeavyImport]:
    """Each heavy package that a fresh ``import xaudit; xaudit.create_host()`` imports.

    A spy on ``builtins.__import__`` records which module's import statement asked for what
    (``importlib.import_module`` by the host bypasses it, the statements in the modules it
    imports do not).
    """
    code = (
        "import builtins, json, sys\n"
        f"heavy = {HEAVY!r}\n"
        "first, askers = {}, {}\n"
        "real_import = builtins.__import__\n"
        "def spy(name, globals=None, *args, **kwargs):\n"
        "    top, asker = name.partition('.')[0], (globals or {}).get('__name__', '?')\n"
        "    if top in heavy:\n"
        "        if top not in sys.modules:\n"
        "            first.setdefault(top, asker)\n"
        "        if asker.partition('.')[0] == 'xaudit':\n"
        "            askers.setdefault(top, set()).add(asker)\n"
        "    return real_import(name, globals, *args, **kwargs)\n"
        "builtins.__import__ = spy\n"
        "import xaudit\n"
        "xaudit.create_host()\n"
        "print(json.dumps({m: [first.get(m, '?'), sorted(askers.get(m, ()))]\n"
        "                  for m in heavy if m in sys.modules}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (AUTOLOAD_ENV, BLOCK_ENV)}
    env[AUTOLOAD_ENV] = "1"  # third-party plugins installed here are not the package's doing
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return {name: HeavyImport(first, frozenset(askers))
            for name, (first, askers) in json.loads(done.stdout).items()}


@pytest.mark.parametrize("package", HEAVY)
def test_creating_the_host_does_not_import(package: str,
                                           imported_by_host: dict[str, HeavyImport]) -> None:
    found = imported_by_host.get(package)
    if found is None:
        return
    raise AssertionError(
        f"creating a host imported {package} (loaded by {found.first}; asked for by "
        f"{', '.join(sorted(found.askers)) or 'no xaudit module'}); "
        "import it inside the function that uses it")


@pytest.mark.parametrize("module", ["xaudit.engine", "xaudit.runner"])
def test_the_runner_and_engine_do_not_import_the_public_api(module: str) -> None:
    edges = import_edges(source_modules())
    assert "xaudit.api" not in {e.target for e in edges if e.source == module}
