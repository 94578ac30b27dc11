"""The documentation says what the code does (issue 18).

* docs/plugins/reference.md is what scripts/plugin_reference.py renders from the code now;
* the explainers on docs/plugins/models.md pass the explainer kit;
* every parameter default the explainer and check pages state is the Params model's default,
  and every parameter their tables name exists; every default docs/suites.md states is the
  suite schema's; docs/suites.md lists every built-in method and check;
* the README's suite is valid, run from examples/diabetes.
"""

from __future__ import annotations

import importlib.util
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

import xaudit
from xaudit.host import Host
from xaudit.suite import Suite, parse_suite
from xaudit.suite_checks import check_against_host
from xaudit.testing import explainer_checks

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NUMBER = r"-?\d{1,3}(?:,\d{3})+|-?\d*\.?\d+(?:[eE]-?\d+)?|true|false"


@pytest.fixture(scope="module")
def host() -> Host:
    return xaudit.create_host(autoload=False)


def test_the_reference_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("plugin_reference",
                                                  ROOT / "scripts" / "plugin_reference.py")
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert (DOCS / "plugins" / "reference.md").read_text() == script.render(), (
        "docs/plugins/reference.md is out of date: run python scripts/plugin_reference.py")


def _examples() -> dict[str, Any]:
    text = (DOCS / "plugins" / "models.md").read_text().split("## Examples", 1)[1]
    found: dict[str, Any] = {}
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
        module = types.ModuleType(f"models_md_{i}")
        exec(compile(block, f"docs/plugins/models.md[{i}]", "exec"), module.__dict__)
        found.update(vars(module))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", ["GradientTimesInput", "LayerActivation", "SaabasPaths"])
def test_the_model_examples_pass_the_kit(name: str) -> None:
    cls = _examples()[name]
    for case in explainer_checks(cls):
        try:
            case()
        except pytest.skip.Exception:
            continue


# --------------------------------------------------------------------------------------------
# Parameter defaults on the explainer and check pages


def _sections(text: str) -> Iterator[tuple[str, str]]:
    heads = list(re.finditer(r"^#{2,4} (.*)$", text, re.M))
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        yield head.group(1), text[head.end():end]


def _literal(cell: str) -> object:
    """A documented default as a value, or None when it is prose (``auto``, ``one feature``)."""
    quoted = re.fullmatch(r"`([^`]*)`", cell.strip())
    text = quoted.group(1) if quoted else cell.strip()
    if re.fullmatch(NUMBER, text) and text not in ("true", "false"):
        return float(text.replace(",", ""))
    if not quoted and text not in ("true", "false"):
        return None
    return yaml.safe_load(text)


def _documented(body: str) -> Iterator[tuple[str, object, bool]]:
    """``(field, default or None, from a parameter table)`` stated in a page section: rows of
    its parameter tables, ``field (value)`` and, in **Params.** paragraphs, ``field: value``."""
    columns: list[str] | None = None
    for line in body.splitlines():
        header = re.match(r"^\| (param|parameter) \|(.*)$", line)
        if header:
            columns = [c.strip() for c in header.group(2).split("|")]
        elif columns is not None and line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            fields = re.findall(r"`([a-z_]+)`", cells[0])
            defaults = ([d.strip() for d in cells[1].split(", ")] if len(fields) > 1
                        else [cells[1]]) if columns[0] == "default" else []
            for i, field in enumerate(fields):
                yield field, _literal(defaults[i]) if i < len(defaults) else None, True
        elif not line.startswith("|"):
            columns = None
    for match in re.finditer(rf"`([a-z_]+)` \(({NUMBER})[,;)]", body):
        yield match.group(1), _literal(match.group(2)), False
    for paragraph in re.findall(r"\*\*Params\.\*\*(.*?)(?:\n\n|$)", body, re.S):
        for match in re.finditer(r"`([a-z_]+): ([^`|]+?)(?: \|[^`]*)?`", paragraph):
            yield match.group(1), _literal(f"`{match.group(2).strip()}`"), False


def _same(documented: object, actual: object) -> bool:
    if isinstance(documented, float) and isinstance(actual, int | float) and not isinstance(
            actual, bool):
        return float(actual) == documented
    return documented == actual


def test_documented_parameter_defaults_are_the_codes(host: Host) -> None:
    classes = {**dict(host.explainers.items()), **dict(host.checks.items())}
    pages = [*sorted((DOCS / "explainers").glob("*.md")), DOCS / "checks.md"]
    problems, compared = [], 0
    for page in pages:
        for heading, body in _sections(page.read_text()):
            named = set(re.findall(r"`([a-z][a-z0-9_.+-]*)`", heading)) & set(classes) or (
                set(re.findall(r"[a-z][a-z0-9_.]*", heading)) & set(classes))
            for field, default, tabled in _documented(body):
                owners = [n for n in named if field in classes[n].Params.model_fields]
                if not owners and named and tabled:
                    problems.append(f"{page.name} [{heading}]: `{field}` is no parameter of "
                                    f"{', '.join(sorted(named))}")
                for name in owners if default is not None else []:
                    actual = classes[name].Params.model_fields[field].get_default(
                        call_default_factory=True)
                    compared += 1
                    if not _same(default, actual):
                        problems.append(f"{page.name} [{heading}]: {name}.{field} is documented "
                                        f"as {default!r}, the code says {actual!r}")
    assert not problems, "\n".join(problems)
    assert compared > 60  # the parser found the tables, bullets and Params paragraphs


# --------------------------------------------------------------------------------------------
# docs/suites.md


SUITE_SECTIONS: dict[str, type[BaseModel]] = {
    "Top level": Suite, "model": xaudit.suite.ModelSpec, "data": xaudit.suite.DataSpec,
    "explainers": xaudit.suite.ExplainerSpec, "checks and gates": xaudit.suite.CheckSpec,
    "report": xaudit.suite.ReportSpec,
}


def _field(model: type[BaseModel], path: str) -> Any:
    """The pydantic field at a dotted ``path`` (names or aliases), through nested models."""
    *parents, last = path.split(".")
    for part in parents:
        annotation = _field(model, part).annotation
        model = next(a for a in (annotation, *getattr(annotation, "__args__", ()))
                     if isinstance(a, type) and issubclass(a, BaseModel))
    return next(f for name, f in model.model_fields.items() if last in (name, f.alias))


def test_the_suite_reference_states_the_schemas_defaults() -> None:
    text = (DOCS / "suites.md").read_text()
    compared = 0
    for heading, body in _sections(text):
        if heading not in SUITE_SECTIONS:
            continue
        header = re.search(r"^\| field \|(.*)$", body, re.M)
        assert header, heading
        column = [c.strip() for c in header.group(1).split("|")].index("default") + 1
        for row in re.findall(r"^\| `([a-z_.]+)` \|(.*)$", body, re.M):
            field = _field(SUITE_SECTIONS[heading], row[0])
            default = _literal(row[1].split("|")[column - 1])
            if default is None:
                continue
            actual = field.get_default(call_default_factory=True)
            actual = getattr(actual, "value", actual)
            compared += 1
            assert _same(default, actual), (
                f"docs/suites.md [{heading}] {row[0]}: documented {default!r}, code {actual!r}")
    assert compared > 20


def test_the_suite_reference_lists_every_builtin(host: Host) -> None:
    text = (DOCS / "suites.md").read_text().split("## Built-in explainers and checks", 1)[1]
    for registry in (host.explainers, host.checks):
        builtins = {n for n in registry.names() if registry.origin(n).distribution == "xaudit"}
        listed = dict(re.findall(r"^\| `([^`]+)` \| \[[^\]]+\]\(([^)#]+)[^)]*\) \|$", text,
                                 re.M))
        assert builtins <= set(listed), f"docs/suites.md misses {builtins - set(listed)}"
        for name in builtins:
            assert (DOCS / listed[name]).is_file(), f"docs/suites.md: broken link for {name}"


def test_the_readme_suite_is_valid(host: Host) -> None:
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "model:" in b)
    suite = parse_suite(yaml.safe_load(block), "README.md", ROOT / "examples" / "diabetes")
    check_against_host(suite, host, "README.md")
    factory = suite.model.factory or ""
    module, function = factory.split(":")
    source = (ROOT / "examples" / "diabetes" / f"{module}.py").read_text()
    assert re.search(rf"^def {function}\(", source, re.M), f"{factory} is not defined"
