"""Write ``docs/plugins/reference.md``: the hooks, base classes, protocols and kit cases, read
from the code (their signatures and docstrings), so the reference cannot drift.

    python scripts/plugin_reference.py          # rewrite the page
    python scripts/plugin_reference.py --check  # exit 1 if the page is out of date

``tests/test_plugin_docs.py`` runs the check.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "plugins" / "reference.md"

HEADER = """\
# Plugin reference

Generated from the code by `scripts/plugin_reference.py` (a test keeps it up to date): every
hook, the base classes a plugin registers, the records it returns, the model protocols it may
ask for, and the cases of the conformance kits. The [tutorial](tutorial.md) goes from zero to a
published package; [the plugin guide](../plugins.md) explains negotiation, hand-offs and what
the host refuses; [testing](testing.md) shows the kits and the pytest plugin at work.

Annotations are written as in the source (`from __future__ import annotations`).
"""


def signature_line(name: str, function: Callable[..., Any]) -> str:
    """``def name(arg: Ann, ...) -> Ret:`` as the source spells it."""
    signature = inspect.signature(function)
    parts = []
    for parameter in signature.parameters.values():
        text = parameter.name
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            text = f"**{text}"
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            text = f"*{text}"
        if parameter.annotation is not inspect.Parameter.empty:
            text += f": {_annotation(parameter.annotation)}"
        if parameter.default is not inspect.Parameter.empty:
            text += f" = {parameter.default!r}"
        parts.append(text)
    keyword_only = [p for p in signature.parameters.values()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY]
    if keyword_only:
        first = list(signature.parameters.values()).index(keyword_only[0])
        parts.insert(first, "*")
    returns = signature.return_annotation
    arrow = "" if returns is inspect.Signature.empty else f" -> {_annotation(returns)}"
    return f"def {name}({', '.join(parts)}){arrow}:"


def _annotation(annotation: object) -> str:
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _doc(obj: object) -> str:
    return inspect.cleandoc(inspect.getdoc(obj) or "")


def attribute_docs(cls: type) -> list[tuple[str, str, str, str]]:
    """``(name, annotation, default, docstring)`` of the attributes ``cls`` itself declares,
    read from its source (a string literal right under an attribute is its docstring)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    found = []
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation = node.target.id, ast.unparse(node.annotation)
            default = ast.unparse(node.value) if node.value is not None else ""
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            name, annotation, default = node.targets[0].id, "", ast.unparse(node.value)
        else:
            continue
        if name.startswith("_") or name == "model_config":
            continue
        following = body[i + 1] if i + 1 < len(body) else None
        doc = (inspect.cleandoc(following.value.value) if isinstance(following, ast.Expr)
               and isinstance(following.value, ast.Constant)
               and isinstance(following.value.value, str) else "")
        found.append((name, annotation, default, doc))
    return found


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_class(cls: type, heading: str = "###") -> list[str]:
    """A class: its docstring, its attributes' table and its own public methods."""
    lines = [f"{heading} `{cls.__module__}.{cls.__qualname__}`",
             "", _doc(cls), ""]
    attributes = attribute_docs(cls)
    if attributes:
        lines += ["| attribute | type | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{name}` | {f'`{_cell(ann)}`' if ann else ''} | "
                  f"{f'`{_cell(default)}`' if default else '(required)' if ann else ''} | "
                  f"{_cell(doc)} |" for name, ann, default, doc in attributes]
        lines.append("")
    for name, member in vars(cls).items():
        function = member.__func__ if isinstance(member, classmethod | staticmethod) else member
        if name.startswith("_") or not inspect.isfunction(function):
            continue
        lines += ["```python", signature_line(name, function), "```", "", _doc(function), ""]
    return lines


def render_hooks() -> list[str]:
    """Every hook specification with its exact signature and docstring."""
    from xaudit import hookspecs

    lines = ["## Hooks", "", _doc(hookspecs), ""]
    for name, function in vars(hookspecs).items():
        if not (name.startswith("xaudit_") and inspect.isfunction(function)):
            continue
        first = function.xaudit_spec["firstresult"]  # type: ignore[attr-defined]
        lines += [f"### `{name}`", "", "```python", signature_line(name, function), "```", "",
                  "A `firstresult` hook: the first non-`None` result wins." if first else "",
                  "",
                  _doc(function), ""]
    return lines


def render_cases(title: str, cases: Iterable[Any], intro: str) -> list[str]:
    """A kit's cases, in order, with what each asserts."""
    lines = [f"### {title}", "", intro, "", "| case | what it asserts |", "|---|---|"]
    lines += [f"| `{case.name}` | {_cell(case.doc)} |" for case in cases]
    return [*lines, ""]


def render() -> str:
    """The whole page."""
    from xaudit import explanation, plugin, randomization, registry, trees
    from xaudit import model as models
    from xaudit.testing import ADAPTER_CASES, CHECK_CASES, EXPLAINER_CASES, SECTION_CASES
    from xaudit.testing import pytest_plugin as fixtures

    lines = [*HEADER.splitlines(), "", *render_hooks(), "## Registries", "",
             *render_class(registry.Registry), *render_class(registry.PluginInfo)]
    lines += ["## Base classes", "", _doc(plugin), ""]
    for cls in (plugin.PluginParams, plugin.AdapterOptions, plugin.Adapter, plugin.Explainer,
                plugin.Check, plugin.ReportSection):
        lines += render_class(cls)
    lines += ["## What plugins return and receive", ""]
    for cls in (explanation.Attribution, plugin.CheckOutcome, plugin.CheckContext,
                plugin.Reexplain):
        lines += render_class(cls)
    lines += ["## Model protocols", "", _doc(models), ""]
    for cls in (models.Model, models.InputSpec, models.DifferentiableModel,
                models.LayeredModel, trees.TreeModel, trees.TreeEnsemble, trees.Tree,
                randomization.RandomizableModel, randomization.Randomization):
        lines += render_class(cls)
    lines += ["## Conformance kits (`xaudit.testing`)", ""]
    lines += render_cases("Explainers: `explainer_checks(cls, ...)`", EXPLAINER_CASES,
                          "Run through `xaudit.explain` on a fixture chosen from what the "
                          "explainer declares.")
    lines += render_cases("Checks: `check_checks(cls, params=None, fixture=None)`",
                          CHECK_CASES, "Run on exact Shapley values and on a constant "
                          "explanation of a tabular fixture.")
    lines += render_cases("Report sections: `section_checks(cls, result=None)`",
                          SECTION_CASES, "Rendered as the report renders it, on sample "
                          "results: full (or yours), empty, and hostile.")
    lines += render_cases("Adapters: `adapter_checks(cls, obj, X=None, options=None)`",
                          ADAPTER_CASES, "On the model the adapter makes of `obj`.")
    lines += ["## pytest plugin (`xaudit.testing.pytest_plugin`)", "", _doc(fixtures), ""]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


def main(argv: list[str]) -> int:
    """Rewrite the page, or with ``--check`` report whether it is up to date."""
    text = render()
    if "--check" in argv:
        current = PAGE.read_text() if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE} is out of date: run python scripts/plugin_reference.py",
                  file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(PAGE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
