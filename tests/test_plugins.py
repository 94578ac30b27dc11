"""The plugin host seen from a plugin author's side.

* every hook is documented in docs/plugins.md with its exact signature, has a docstring, and is
  called when a plugin implements it;
* a third-party package (examples/plugin_template, presented as an installed distribution by a
  fake ``.dist-info`` folder on ``sys.path``) is discovered, listed, blocked and run from a suite
  with no change to xaudit;
* malformed plugins are refused with a message naming the plugin and its distribution;
* the template's explainer and check agree with closed forms and hand computations.

That creating a host imports no heavy framework is in test_architecture.py.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xaudit
from xaudit import (
    Adapter,
    AdapterOptions,
    CapabilityError,
    Check,
    CheckOutcome,
    Explainer,
    Explanation,
    InputError,
    ModelBase,
    PluginError,
    ReportSection,
    hookimpl,
    hookspecs,
)
from xaudit.cli import main
from xaudit.host import AUTOLOAD_ENV, BLOCK_ENV, create_host
from xaudit.model import InputSpec

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"
TEMPLATE_SRC = ROOT / "examples" / "plugin_template" / "src"
EXAMPLE_EXPLAINER = "example.gradient_free_sensitivity"
EXAMPLE_CHECK = "example.sparsity"
EXAMPLE_DIST = "xaudit-plugin-example"
BUILTIN = (f"plugin 'xaudit.plugins.perturbation.ablation' "
           f"(distribution xaudit {xaudit.__version__})")

HOOKSPECS: dict[str, Callable[..., Any]] = {
    name: function
    for name, function in vars(hookspecs).items()
    if name.startswith("xaudit_") and inspect.isfunction(function)
}


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own XAUDIT_* settings must not change these tests."""
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv(BLOCK_ENV, raising=False)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (AUTOLOAD_ENV, BLOCK_ENV)}
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# Hooks: documented, with docstrings, and each called


def _annotation(annotation: object) -> str:
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def signature_line(name: str, function: Callable[..., Any]) -> str:
    """``def name(arg: Ann, ...) -> Ret:`` as the source spells it."""
    signature = inspect.signature(function)
    parts = []
    for parameter in signature.parameters.values():
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, parameter
        assert parameter.default is inspect.Parameter.empty, parameter
        assert parameter.annotation is not inspect.Parameter.empty, parameter
        parts.append(f"{parameter.name}: {_annotation(parameter.annotation)}")
    assert signature.return_annotation is not inspect.Signature.empty, name
    return f"def {name}({', '.join(parts)}) -> {_annotation(signature.return_annotation)}:"


def _python_block_lines(text: str) -> set[str]:
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    return {line.strip() for block in blocks for line in block.splitlines()}


def _doc_section(text: str, hook: str) -> str:
    match = re.search(rf"^### `{hook}`\n(.*?)(?=^#{{1,3}} )", text, re.DOTALL | re.MULTILINE)
    assert match, f"docs/plugins.md has no '### `{hook}`' section"
    return match.group(1)


def test_hookspecs_are_collected() -> None:
    assert set(HOOKSPECS) >= {
        "xaudit_register_adapters", "xaudit_register_explainers", "xaudit_register_checks",
        "xaudit_register_report_sections", "xaudit_adapt_model",
    }
    for name, function in HOOKSPECS.items():
        assert hasattr(function, "xaudit_spec"), f"{name} is not marked @hookspec"


@pytest.mark.parametrize("hook", sorted(HOOKSPECS))
def test_hook_is_documented_with_exact_signature(hook: str) -> None:
    text = DOC.read_text()
    function = HOOKSPECS[hook]
    assert inspect.getdoc(function), f"{hook} has no docstring"
    expected = signature_line(hook, function)
    assert expected in _python_block_lines(text), (
        f"docs/plugins.md has no python block with the line {expected!r}"
    )
    section = _doc_section(text, hook)
    assert expected in section
    firstresult = function.xaudit_spec["firstresult"]  # type: ignore[attr-defined]
    assert ("firstresult" in section) == firstresult, (
        f"the section of {hook} must say whether it is a firstresult hook"
    )


def test_doc_mentions_no_stale_hooks() -> None:
    documented = set(re.findall(r"def (xaudit_\w+)\(", DOC.read_text()))
    assert documented == set(HOOKSPECS)


@dataclass
class ProbeModel(ModelBase):
    """A model claimed by the probe plugin: the sum of the features."""

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        return X.sum(axis=1)

    def fingerprint(self) -> str:
        return "0" * 64


def probe_model(adapter: str) -> ProbeModel:
    return ProbeModel(name="probe", adapter=adapter, task="regression",
                      input_spec=InputSpec((3,)), output_names=("y",))


class ProbeThing:
    """An object only the probe plugin's registered adapter claims."""


class ProbeAdapter(Adapter):
    name = "probe.adapter"

    @classmethod
    def claims(cls, obj: object) -> bool:
        return isinstance(obj, ProbeThing)

    @classmethod
    def load(cls, obj: object, options: AdapterOptions) -> ProbeModel:
        return probe_model(cls.name)


class ProbeExplainer(Explainer):
    name = "probe.explainer"

    def explain(self, model, X, *, background, targets, rng):  # type: ignore[no-untyped-def]
        return xaudit.Attribution(values=np.ones((X.shape[0], *X.shape[1:], targets.n_slots)))


class ProbeCheck(Check):
    name = "probe.check"
    direction = "higher"

    def run(self, model, explanation, data, rng):  # type: ignore[no-untyped-def]
        return CheckOutcome(value=float(explanation.values.sum()))


class ProbeSection(ReportSection):
    name = "probe.section"
    title = "Probe"
    template = "probe.html.j2"

    def context(self, result):  # type: ignore[no-untyped-def]
        return None


class EveryHook:
    """A plugin object implementing every hook and recording each call."""

    __name__ = "probe_plugin"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def xaudit_register_adapters(self, registry: Any) -> None:
        self.calls.append(("xaudit_register_adapters", registry))
        registry.add(ProbeAdapter)

    @hookimpl
    def xaudit_register_explainers(self, registry: Any) -> None:
        self.calls.append(("xaudit_register_explainers", registry))
        registry.add(ProbeExplainer)

    @hookimpl
    def xaudit_register_checks(self, registry: Any) -> None:
        self.calls.append(("xaudit_register_checks", registry))
        registry.add(ProbeCheck)

    @hookimpl
    def xaudit_register_report_sections(self, registry: Any) -> None:
        self.calls.append(("xaudit_register_report_sections", registry))
        registry.add(ProbeSection)

    @hookimpl(tryfirst=True)
    def xaudit_adapt_model(self, obj: object, options: dict[str, Any]) -> ProbeModel | None:
        self.calls.append(("xaudit_adapt_model", (obj, options)))
        return probe_model("probe.hook") if getattr(obj, "probe_claim", False) else None


def _sum_features(X: np.ndarray) -> np.ndarray:
    return X.sum(axis=1)


def _claimed(X: np.ndarray) -> np.ndarray:
    return X.sum(axis=1)


_claimed.probe_claim = True  # type: ignore[attr-defined]


def test_probe_plugin_implements_every_hook() -> None:
    implemented = {name for name in dir(EveryHook) if hasattr(getattr(EveryHook, name),
                                                               "xaudit_impl")}
    assert implemented == set(HOOKSPECS), "add the new hook to EveryHook and test it"


def test_every_register_hook_is_called_with_its_registry() -> None:
    plugin = EveryHook()
    host = create_host(plugins=[plugin], autoload=False)
    calls = dict(plugin.calls)
    assert calls == {
        "xaudit_register_adapters": host.adapters,
        "xaudit_register_explainers": host.explainers,
        "xaudit_register_checks": host.checks,
        "xaudit_register_report_sections": host.report_sections,
    }
    assert len(plugin.calls) == 4  # each once; adapt_model only when something is adapted
    for registry, name in [(host.adapters, "probe.adapter"), (host.explainers, "probe.explainer"),
                           (host.checks, "probe.check"),
                           (host.report_sections, "probe.section")]:
        assert name in registry
        assert registry.origin(name).name == "probe_plugin"
    row = next(r for r in host.describe() if r["name"] == "probe_plugin")
    assert row == {"name": "probe_plugin", "distribution": "local", "version": "",
                   "adapters": ["probe.adapter"], "explainers": ["probe.explainer"],
                   "checks": ["probe.check"], "report_sections": ["probe.section"],
                   "unavailable": {}}
    # what was registered is what the API uses
    assert host.adapt(ProbeThing()).adapter == "probe.adapter"
    X = np.arange(6.0).reshape(2, 3)
    explanation = xaudit.explain(_sum_features, X, method="probe.explainer", host=host)
    assert explanation.values.shape == (2, 3, 1)
    assert xaudit.check("probe.check", _sum_features, explanation, host=host).value == 6.0


def test_adapt_model_hook_claims_before_builtin_adapters() -> None:
    # without the probe plugin the built-in callable adapter takes the function ...
    assert create_host(autoload=False).adapt(_claimed).adapter == "callable"
    plugin = EveryHook()
    host = create_host(plugins=[plugin], autoload=False)
    del plugin.calls[:]
    # ... with it, the firstresult hook claims it before any registered adapter is asked
    model = host.adapt(_claimed, output_names=["y"])
    assert model.adapter == "probe.hook"
    assert plugin.calls == [("xaudit_adapt_model", (_claimed, {"output_names": ["y"]}))]
    np.testing.assert_array_equal(model.predict(np.ones((2, 3))), [[3.0], [3.0]])


def test_adapt_model_hook_returning_none_passes() -> None:
    plugin = EveryHook()
    host = create_host(plugins=[plugin], autoload=False)
    del plugin.calls[:]
    model = host.adapt(_sum_features)
    assert plugin.calls == [("xaudit_adapt_model", (_sum_features, {}))]
    assert model.adapter == "callable"
    # a named adapter skips the hook altogether
    del plugin.calls[:]
    assert host.adapt(_claimed, adapter="callable").adapter == "callable"
    assert plugin.calls == []


# --------------------------------------------------------------------------------------------
# Entry-point discovery of the template package


def _fake_distribution(site: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[xaudit]\n{lines}")


@pytest.fixture
def example_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The template package, seen by importlib.metadata as installed distribution 0.1."""
    site = tmp_path / "site"
    _fake_distribution(site, EXAMPLE_DIST, "0.1", {"example": "xaudit_plugin_example"})
    monkeypatch.syspath_prepend(str(TEMPLATE_SRC))
    monkeypatch.syspath_prepend(str(site))
    return site


def _pythonpath(site: Path) -> str:
    return os.pathsep.join([str(site), str(TEMPLATE_SRC)])


W = np.array([-3.0, 1.0, 2.0])
# Gini index of |W| = (1, 2, 3) sorted: sum_k (2k - d - 1) c_k / (d sum c) = (-2 + 0 + 6) / 18
GINI_W = 2.0 / 9.0

SUITE = """\
name: third-party-plugin
seed: 3
model:
  factory: example_suite_model:make
  task: regression
  output_names: [y]
data:
  source: data.npz
  explain: {{n: 6, from: test}}
  background: {{n: 20, from: train}}
explainers:
  - id: fd
    method: example.gradient_free_sensitivity
    params: {{relative_step: 0.001}}
checks:
  - check: example.sparsity
    explainer: fd
{gate}
report:
  formats: [json]
  out_dir: out
"""


@pytest.fixture
def suite_dir(tmp_path: Path) -> Iterator[Path]:
    """A suite on a linear callable model f(x) = W.x + 0.5 and a small NPZ data file."""
    folder = tmp_path / "suite"
    folder.mkdir()
    X = np.random.default_rng(0).normal(size=(40, 3))
    np.savez(folder / "data.npz", X=X, y=X @ W, feature_names=np.array(["a", "b", "c"]))
    (folder / "example_suite_model.py").write_text(textwrap.dedent(f"""\
        import numpy as np

        W = np.array({W.tolist()})


        def predict(X):
            return X @ W + 0.5


        def make():
            return predict
        """))
    for name, gate in [("pass", "    gate: {threshold: 0.2}"),
                       ("fail", "    gate: {threshold: 0.25}"),
                       ("ungated", "")]:
        (folder / f"{name}.yaml").write_text(SUITE.format(gate=gate))
    yield folder
    sys.modules.pop("example_suite_model", None)


def test_entry_point_plugin_is_discovered(example_site: Path) -> None:
    host = create_host()
    info = host.plugins["example"]
    assert (info.name, info.distribution, info.version) == ("example", EXAMPLE_DIST, "0.1")
    assert host.explainers.origin(EXAMPLE_EXPLAINER) == info
    assert host.checks.origin(EXAMPLE_CHECK) == info
    assert {"name": "example", "distribution": EXAMPLE_DIST, "version": "0.1", "adapters": [],
            "explainers": [EXAMPLE_EXPLAINER], "checks": [EXAMPLE_CHECK],
            "report_sections": ["example.sparsity_overview"],
            "unavailable": {}} in host.describe()


def test_cli_plugins_json_lists_entry_point_plugin(example_site: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "xaudit", "plugins", "--json"], capture_output=True, text=True,
        env=_clean_env(PYTHONPATH=_pythonpath(example_site)), check=False, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["example"]["distribution"] == EXAMPLE_DIST
    assert rows["example"]["version"] == "0.1"
    assert rows["example"]["explainers"] == [EXAMPLE_EXPLAINER]
    assert rows["example"]["checks"] == [EXAMPLE_CHECK]
    assert "xaudit.plugins.perturbation.ablation" in rows  # built-ins still there


def test_suite_using_plugin_runs_from_cli(example_site: Path, suite_dir: Path) -> None:
    out = suite_dir / "out-pass"
    done = subprocess.run(
        [sys.executable, "-m", "xaudit", "run", str(suite_dir / "pass.yaml"), "--out", str(out),
         "-q"],
        capture_output=True, text=True, env=_clean_env(PYTHONPATH=_pythonpath(example_site)),
        check=False, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = xaudit.AuditResult.load(out)
    explanation = result.explanations["fd"]
    assert explanation.method == EXAMPLE_EXPLAINER
    assert explanation.values.shape == (6, 3, 1)
    # f(x) = W.x + 0.5: the central difference of a linear function is W, whatever the step
    np.testing.assert_allclose(explanation.values[..., 0], np.tile(W, (6, 1)), atol=1e-9)
    (check,) = result.checks
    assert (check.check, check.status, check.direction) == (EXAMPLE_CHECK, "pass", "higher")
    assert check.value == pytest.approx(GINI_W, abs=1e-9)
    assert {"name": "example", "distribution": EXAMPLE_DIST,
            "version": "0.1"} in result.provenance["plugins"]


@pytest.mark.parametrize(("suite", "code"), [("fail", 1), ("ungated", 5)])
def test_suite_using_plugin_exit_codes(
    example_site: Path, suite_dir: Path, suite: str, code: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = suite_dir / f"out-{suite}"
    assert main(["run", str(suite_dir / f"{suite}.yaml"), "--out", str(out), "-q"]) == code
    (check,) = xaudit.AuditResult.load(out).checks
    assert check.value == pytest.approx(GINI_W, abs=1e-9)


def test_autoload_disabled_hides_entry_point_plugin(
    example_site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    assert "example" in create_host().plugins
    assert "example" not in create_host(autoload=False).plugins
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    host = create_host()
    assert "example" not in host.plugins
    assert EXAMPLE_EXPLAINER not in host.explainers
    assert "ablation" in host.explainers  # built-ins are not entry points
    monkeypatch.delenv(AUTOLOAD_ENV)
    assert main(["--no-autoload", "plugins", "--json"]) == 0
    assert "example" not in {row["name"] for row in json.loads(capsys.readouterr().out)}


def test_block_env_blocks_entry_point_plugin(
    example_site: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(BLOCK_ENV, "other, example")
    host = create_host()
    assert "example" not in host.plugins
    assert EXAMPLE_EXPLAINER not in host.explainers
    assert EXAMPLE_CHECK not in host.checks
    assert host.blocked == ("other", "example")


def test_block_plugin_option_blocks_entry_point_plugin(
    example_site: Path, suite_dir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plugins", "--json"]) == 0
    assert "example" in {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert main(["--block-plugin", "example", "plugins", "--json"]) == 0
    assert "example" not in {row["name"] for row in json.loads(capsys.readouterr().out)}
    # and a suite that needs it is then invalid (exit 4), naming the unknown method
    assert main(["--block-plugin", "example", "validate", str(suite_dir / "pass.yaml")]) == 4
    err = capsys.readouterr().err
    assert f"explainers[0].method: unknown explainer '{EXAMPLE_EXPLAINER}'" in err
    assert f"checks[0].check: unknown check '{EXAMPLE_CHECK}'" in err


def test_builtin_blocked_by_module_name(monkeypatch: pytest.MonkeyPatch) -> None:
    host = create_host(block=["xaudit.plugins.perturbation.ablation"], autoload=False)
    assert "ablation" not in host.explainers
    assert "xaudit.plugins.perturbation.ablation" not in host.plugins
    assert "completeness" in host.checks
    monkeypatch.setenv(BLOCK_ENV, "xaudit.plugins.perturbation.ablation")
    assert "ablation" not in create_host(autoload=False).explainers


# --------------------------------------------------------------------------------------------
# Malformed plugins are refused, naming the plugin and its distribution

BROKEN = "plugin 'broken' (distribution xaudit-plugin-broken 0.3)"
_module_ids = itertools.count()

HEADER = """\
from pydantic import BaseModel, ConfigDict

from xaudit import Check, CheckOutcome, Explainer, PluginParams, hookimpl
"""

MALFORMED = {
    "not a subclass": ("""
class Sensitivity:
    name = "broken.sensitivity"

    def explain(self, model, X, *, background, targets, rng):
        return None

@hookimpl
def xaudit_register_explainers(registry):
    registry.add(Sensitivity)
""", "registered a malformed explainer: Sensitivity does not derive from xaudit's Explainer"),
    "bad name": ("""
class Sensitivity(Explainer):
    name = "Bad Name"

    def explain(self, model, X, *, background, targets, rng):
        return None

@hookimpl
def xaudit_register_explainers(registry):
    registry.add(Sensitivity)
""", "Sensitivity.name must be a lower-case dotted name like 'shap.tree', got 'Bad Name'"),
    "abstract": ("""
class Sensitivity(Explainer):
    name = "broken.sensitivity"

@hookimpl
def xaudit_register_explainers(registry):
    registry.add(Sensitivity)
""", "Sensitivity does not implement explain"),
    "params allow extra": ("""
class LooseParams(PluginParams):
    model_config = ConfigDict(extra="allow")

class Sensitivity(Explainer):
    name = "broken.sensitivity"
    Params = LooseParams

    def explain(self, model, X, *, background, targets, rng):
        return None

@hookimpl
def xaudit_register_explainers(registry):
    registry.add(Sensitivity)
""", "Sensitivity.Params must forbid extra fields"),
    "params not PluginParams": ("""
class PlainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

class Sensitivity(Explainer):
    name = "broken.sensitivity"
    Params = PlainParams

    def explain(self, model, X, *, background, targets, rng):
        return None

@hookimpl
def xaudit_register_explainers(registry):
    registry.add(Sensitivity)
""", "Sensitivity.Params must derive from xaudit's PluginParams"),
    "check without direction": ("""
class Sparsity(Check):
    name = "broken.sparsity"

    def run(self, model, explanation, data, rng):
        return CheckOutcome(0.0)

@hookimpl
def xaudit_register_checks(registry):
    registry.add(Sparsity)
""", "registered a malformed check: Sparsity.direction must be 'lower' or 'higher'"),
    "check with invalid direction": ("""
class Sparsity(Check):
    name = "broken.sparsity"
    direction = "up"

    def run(self, model, explanation, data, rng):
        return CheckOutcome(0.0)

@hookimpl
def xaudit_register_checks(registry):
    registry.add(Sparsity)
""", "Sparsity.direction must be 'lower' or 'higher'"),
    "duplicate name": ("""
class Ablation(Explainer):
    name = "ablation"

    def explain(self, model, X, *, background, targets, rng):
        return None

@hookimpl
def xaudit_register_explainers(registry):
    registry.add(Ablation)
""", f"registered explainer 'ablation', which {BUILTIN} already registered"),
    "misspelled hook": ("""
@hookimpl
def xaudit_register_explainer(registry):
    pass
""", "unknown hook 'xaudit_register_explainer'"),
    "wrong argument name": ("""
@hookimpl
def xaudit_register_explainers(reg):
    pass
""", "Argument(s) {'reg'} are declared in the hookimpl but can not be found in the hookspec"),
    "import fails": ("""
raise ImportError("No module named 'torchy'")
""", "failed to import '{module}': No module named 'torchy'"),
    "hook raises": ("""
@hookimpl
def xaudit_register_checks(registry):
    raise RuntimeError("boom")
""", "failed in xaudit_register_checks: RuntimeError('boom')"),
}


@pytest.fixture
def broken_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Installs a one-module distribution ``xaudit-plugin-broken 0.3``; returns its module."""
    site = tmp_path / "broken-site"
    site.mkdir()
    modules: list[str] = []

    def install(body: str) -> str:
        module = f"xaudit_broken_plugin_{next(_module_ids)}"
        (site / f"{module}.py").write_text(HEADER + body)
        _fake_distribution(site, "xaudit-plugin-broken", "0.3", {"broken": module})
        monkeypatch.syspath_prepend(str(site))
        modules.append(module)
        return module

    yield install
    for module in modules:
        sys.modules.pop(module, None)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_plugin_is_refused(case: str, broken_site: Callable[[str], str]) -> None:
    body, expected = MALFORMED[case]
    module = broken_site(body)
    with pytest.raises(PluginError) as refused:
        create_host()
    message = str(refused.value)
    assert BROKEN in message
    assert expected.replace("{module}", module) in message


def test_entry_point_to_missing_module_is_refused(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    _fake_distribution(site, "xaudit-plugin-ghost", "2.0", {"ghost": "xaudit_no_such_module"})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(PluginError, match=re.escape(
        "plugin 'ghost' (distribution xaudit-plugin-ghost 2.0) failed to import "
        "'xaudit_no_such_module': No module named 'xaudit_no_such_module'"
    )):
        create_host()
    assert "ghost" not in create_host(block=["ghost"]).plugins  # blocking it is the way out


def test_duplicate_between_two_plugins_names_both() -> None:
    class One:
        __name__ = "plugin_one"

        @hookimpl
        def xaudit_register_checks(self, registry: Any) -> None:
            registry.add(ProbeCheck)

    class Two(One):
        __name__ = "plugin_two"

    with pytest.raises(PluginError) as refused:
        create_host(plugins=[One(), Two()], autoload=False)
    assert str(refused.value).startswith(
        "plugin 'plugin_two' (distribution local) registered check 'probe.check', which "
        "plugin 'plugin_one' (distribution local) already registered"
    )
    assert "rename one of them" in str(refused.value)


def test_cli_reports_malformed_plugin_with_exit_4(
    broken_site: Callable[[str], str], capsys: pytest.CaptureFixture[str],
) -> None:
    broken_site(MALFORMED["bad name"][0])
    assert main(["plugins"]) == 4
    err = capsys.readouterr().err
    assert BROKEN in err
    assert "'Bad Name'" in err
    assert main(["--block-plugin", "broken", "plugins"]) == 0


# --------------------------------------------------------------------------------------------
# The template's numbers against closed forms and hand computations


@pytest.fixture
def example_host(monkeypatch: pytest.MonkeyPatch) -> xaudit.Host:
    monkeypatch.syspath_prepend(str(TEMPLATE_SRC))
    return create_host(plugins=["xaudit_plugin_example"], autoload=False)


def _data(n: int = 7, d: int = 4, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(loc=0.5, scale=2.0, size=(50, d))


def test_sensitivity_of_linear_model_is_its_weights(example_host: xaudit.Host) -> None:
    X, background = _data()
    weights = np.array([[1.5, -2.0], [0.0, 0.25], [-4.0, 1.0], [3.0, 0.0]])  # (d, m)

    def linear(rows: np.ndarray) -> np.ndarray:
        return rows @ weights - 7.0

    exp = xaudit.explain(linear, X, method=EXAMPLE_EXPLAINER, background=background,
                         host=example_host)
    assert exp.values.shape == (7, 4, 2)
    assert exp.base_values is None
    assert not exp.additive
    np.testing.assert_allclose(exp.values, np.broadcast_to(weights, (7, 4, 2)), atol=1e-9)
    one = xaudit.explain(linear, X, method=EXAMPLE_EXPLAINER, background=background, target=1,
                         host=example_host, max_batch=5)  # 5 rows a call: one row at a time
    np.testing.assert_allclose(one.values[..., 0], np.broadcast_to(weights[:, 1], (7, 4)),
                               atol=1e-9)


def test_sensitivity_is_a_central_difference(example_host: xaudit.Host) -> None:
    X, background = _data()
    # f = sum x^2: (x+h)^2 - (x-h)^2 = 4xh exactly, so phi = 2x for any h (a forward
    # difference would give 2x + h)
    square = xaudit.explain(lambda rows: (rows**2).sum(axis=1), X, method=EXAMPLE_EXPLAINER,
                            background=background, host=example_host, relative_step=0.2)
    np.testing.assert_allclose(square.values[..., 0], 2 * X, atol=1e-9)
    # f = sum x^3: ((x+h)^3 - (x-h)^3) / 2h = 3x^2 + h^2, with h = relative_step * std(bg)
    h = 0.1 * background.std(axis=0)
    cube = xaudit.explain(lambda rows: (rows**3).sum(axis=1), X, method=EXAMPLE_EXPLAINER,
                          background=background, host=example_host, relative_step=0.1)
    np.testing.assert_allclose(cube.values[..., 0], 3 * X**2 + h**2, atol=1e-9)
    np.testing.assert_allclose(cube.extras["steps"], h, rtol=1e-12)


def test_sensitivity_constant_background_feature_uses_min_step(
    example_host: xaudit.Host,
) -> None:
    X, background = _data()
    background[:, 2] = 5.0  # no spread: the step falls back to min_step
    exp = xaudit.explain(lambda rows: (rows**3).sum(axis=1), X, method=EXAMPLE_EXPLAINER,
                         background=background, host=example_host, relative_step=0.1,
                         min_step=0.01)
    assert exp.extras["steps"][2] == 0.01
    np.testing.assert_allclose(exp.values[:, 2, 0], 3 * X[:, 2] ** 2 + 0.01**2, atol=1e-9)


def test_sensitivity_params_are_validated(example_host: xaudit.Host) -> None:
    X, background = _data()
    with pytest.raises(InputError, match="relative_stpe: Extra inputs are not permitted"):
        xaudit.explain(_sum_features, X, method=EXAMPLE_EXPLAINER, background=background,
                       host=example_host, relative_stpe=0.1)
    with pytest.raises(InputError, match="relative_step: Input should be greater than 0"):
        xaudit.explain(_sum_features, X, method=EXAMPLE_EXPLAINER, background=background,
                       host=example_host, relative_step=0)
    with pytest.raises(InputError, match="needs a background"):
        xaudit.explain(_sum_features, X, method=EXAMPLE_EXPLAINER, host=example_host)


def test_sparsity_matches_hand_computed_gini(example_host: xaudit.Host) -> None:
    # rows x features x outputs. Gini of c sorted ascending: sum_k (2k - d - 1) c_k / (d sum c),
    # with d = 3 the weights are (-2, 0, 2):
    #   |(-3, 1, 2)| -> (1, 2, 3): (-2 + 0 + 6) / (3 * 6) = 2/9
    #   (0, 0, 4):                 (0 + 0 + 8) / (3 * 4)  = 2/3 = 1 - 1/d (one feature has all)
    #   (1, 1, 1), (2, 2, 2):      (-2 + 0 + 2) / ...     = 0   (all equal)
    #   (0, 0, 0):                 0 by convention (nothing attributed)
    first = np.array([[-3, 1, 2], [0, 0, 4], [1, 1, 1], [0, 0, 0]], dtype=float)
    second = np.array([[0, 0, 4], [0, 0, 4], [1, 1, 1], [2, 2, 2]], dtype=float)
    values = np.stack([first, second], axis=-1)  # (4, 3, 2)
    explanation = Explanation(
        method="hand", values=values, base_values=None, feature_names=("a", "b", "c"),
        output_names=("y0", "y1"), target_indices=np.tile([0, 1], (4, 1)),
        inputs=np.zeros((4, 3)),
    )
    per_row = [(2 / 9 + 2 / 3) / 2, 2 / 3, 0.0, 0.0]  # mean over the two outputs

    def model(rows: np.ndarray) -> np.ndarray:
        return np.zeros((rows.shape[0], 2))

    mean = xaudit.check(EXAMPLE_CHECK, model, explanation, host=example_host)
    assert mean.direction == "higher"
    np.testing.assert_allclose(mean.values, per_row, atol=1e-12)
    assert mean.value == pytest.approx((4 / 9 + 2 / 3) / 4, abs=1e-12)
    assert mean.details["least_sparse_row"] == 2
    assert mean.model_calls == 0
    worst = xaudit.check(EXAMPLE_CHECK, model, explanation, host=example_host,
                         aggregate="min")
    assert worst.value == 0.0


@pytest.fixture
def template(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The template's plugin module, imported from its source folder."""
    monkeypatch.syspath_prepend(str(TEMPLATE_SRC))
    return importlib.import_module("xaudit_plugin_example")


def test_gini_of_one_hot_is_one_minus_one_over_d(template: Any) -> None:
    for d in (1, 2, 5, 10):
        one_hot = np.zeros(d)
        one_hot[d // 2] = 7.0
        assert template.gini_index(one_hot) == pytest.approx(1 - 1 / d, abs=1e-12)
        assert template.gini_index(np.full(d, 0.3)) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Hook implementations called the way pluggy would call them; checks negotiated too


class NoArgumentHook:
    """Valid in pluggy: an implementation may take fewer arguments than its specification."""

    __name__ = "no_argument_hook"

    def __init__(self) -> None:
        self.called = False

    @hookimpl
    def xaudit_register_checks(self) -> None:
        self.called = True


def test_register_hook_may_omit_its_argument() -> None:
    plugin = NoArgumentHook()
    create_host(plugins=[plugin], autoload=False)
    assert plugin.called


class WrapperHook:
    __name__ = "wrapper_hook"

    def __init__(self) -> None:
        self.entered = False

    @hookimpl(wrapper=True)
    def xaudit_register_checks(self, registry: Any) -> Any:
        self.entered = True
        return (yield)


def test_register_hook_wrapper_is_run_or_refused() -> None:
    plugin = WrapperHook()
    refusal = ""
    try:
        create_host(plugins=[plugin], autoload=False)
    except PluginError as refused:
        refusal = str(refused)
    assert plugin.entered or "wrapper_hook" in refusal


class NeedsGradients(Check):
    name = "probe.needs_gradients"
    direction = "lower"
    requires = frozenset({"gradients"})
    ran = False

    def run(self, model, explanation, data, rng):  # type: ignore[no-untyped-def]
        NeedsGradients.ran = True
        return CheckOutcome(value=0.0)


class NeedsGradientsPlugin:
    __name__ = "needs_gradients"

    @hookimpl
    def xaudit_register_checks(self, registry: Any) -> None:
        registry.add(NeedsGradients)


def test_check_requires_is_negotiated() -> None:
    host = create_host(plugins=[NeedsGradientsPlugin()], autoload=False)
    X = np.ones((2, 3))
    explanation = xaudit.explain(_sum_features, X, method="ablation", background=X, host=host)
    NeedsGradients.ran = False
    with pytest.raises(CapabilityError, match=re.escape("probe.needs_gradients")):
        xaudit.check("probe.needs_gradients", _sum_features, explanation, host=host)
    assert not NeedsGradients.ran
