"""The plugin host: a pluggy manager plus the typed registries that plugins fill.

:func:`create_host` has no import-time side effects: it registers the built-in plugin modules
(ordinary plugins, registered exactly as third-party ones are), loads third-party plugins from
the ``xaudit`` entry-point group unless ``XAUDIT_DISABLE_PLUGIN_AUTOLOAD=1``, skips every name on
the block list (``XAUDIT_BLOCK_PLUGINS=a,b`` or ``block=``), and then asks each plugin to
register its adapters, explainers, checks and report sections.
"""

from __future__ import annotations

import functools
import importlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

import pluggy
from pydantic import ValidationError

from . import hookspecs
from .blame import BLOCK_ENV, BLOCK_OPTION
from .capabilities import refusal, unmet
from .errors import InputError, ModelLoadError, PluginError
from .extras import unavailable_reason
from .loader import fill, load_plugins
from .model import Model
from .plugin import Adapter, Check, Explainer, PluginParams, ReportSection
from .protocols import conforms
from .registry import PluginInfo, Registry
from .version import __version__

BUILTIN_PLUGINS: tuple[str, ...] = (
    "xaudit.adapters.callable",
    "xaudit.adapters.sklearn.adapter",
    "xaudit.adapters.xgboost",
    "xaudit.adapters.lightgbm",
    "xaudit.adapters.torch.adapter",
    "xaudit.adapters.onnx.adapter",
    "xaudit.plugins.perturbation.ablation",
    "xaudit.plugins.checks.completeness",
    "xaudit.plugins.gradients.saliency",
    "xaudit.plugins.gradients.integrated",
    "xaudit.plugins.gradients.smoothgrad",
    "xaudit.plugins.gradients.expected",
    "xaudit.plugins.perturbation.occlusion",
    "xaudit.plugins.deep.deeplift",
    "xaudit.plugins.deep.deepshap",
    "xaudit.plugins.deep.gradcam",
    "xaudit.plugins.deep.layer",
    "xaudit.plugins.deep.neuron",
    "xaudit.plugins.deep.attention",
    "xaudit.plugins.shapley.tree",
    "xaudit.plugins.shapley.exact",
    "xaudit.plugins.shapley.kernel",
    "xaudit.plugins.shapley.permutation",
    "xaudit.plugins.lime.tabular",
    "xaudit.plugins.lime.text",
    "xaudit.plugins.lime.image",
    "xaudit.plugins.checks.deletion",
    "xaudit.plugins.checks.perturbation",
    "xaudit.plugins.checks.randomization",
    "xaudit.plugins.checks.stability",
    "xaudit.plugins.effects.permutation_importance",
    "xaudit.plugins.effects.partial_dependence",
    "xaudit.plugins.counterfactual.explainer",
    "xaudit.plugins.deep.probing",
    "xaudit.plugins.governance.drift",
    "xaudit.plugins.governance.performance",
    "xaudit.plugins.governance.policy",
    "xaudit.reports.builtin_sections",
)
"""Modules registered as plugins in every host (block one by its module name)."""

RENAMED_PLUGINS: dict[str, str] = {
    "xaudit.adapters.onnx": "xaudit.adapters.onnx.adapter",
    "xaudit.adapters.sklearn": "xaudit.adapters.sklearn.adapter",
    "xaudit.adapters.torch": "xaudit.adapters.torch.adapter",
    "xaudit.plugins.ablation": "xaudit.plugins.perturbation.ablation",
    "xaudit.plugins.attention": "xaudit.plugins.deep.attention",
    "xaudit.plugins.checks_deletion": "xaudit.plugins.checks.deletion",
    "xaudit.plugins.checks_perturbation": "xaudit.plugins.checks.perturbation",
    "xaudit.plugins.checks_randomization": "xaudit.plugins.checks.randomization",
    "xaudit.plugins.checks_stability": "xaudit.plugins.checks.stability",
    "xaudit.plugins.completeness": "xaudit.plugins.checks.completeness",
    "xaudit.plugins.counterfactual": "xaudit.plugins.counterfactual.explainer",
    "xaudit.plugins.deeplift": "xaudit.plugins.deep.deeplift",
    "xaudit.plugins.gradcam": "xaudit.plugins.deep.gradcam",
    "xaudit.plugins.gradient_integrated": "xaudit.plugins.gradients.integrated",
    "xaudit.plugins.gradient_saliency": "xaudit.plugins.gradients.saliency",
    "xaudit.plugins.gradient_smoothgrad": "xaudit.plugins.gradients.smoothgrad",
    "xaudit.plugins.layer_methods": "xaudit.plugins.deep.layer",
    "xaudit.plugins.lime_image": "xaudit.plugins.lime.image",
    "xaudit.plugins.lime_tabular": "xaudit.plugins.lime.tabular",
    "xaudit.plugins.lime_text": "xaudit.plugins.lime.text",
    "xaudit.plugins.neuron_conductance": "xaudit.plugins.deep.neuron",
    "xaudit.plugins.occlusion": "xaudit.plugins.perturbation.occlusion",
    "xaudit.plugins.partial_dependence": "xaudit.plugins.effects.partial_dependence",
    "xaudit.plugins.permutation_importance": "xaudit.plugins.effects.permutation_importance",
    "xaudit.plugins.probing": "xaudit.plugins.deep.probing",
    "xaudit.plugins.shap_deep": "xaudit.plugins.deep.deepshap",
    "xaudit.plugins.shap_exact": "xaudit.plugins.shapley.exact",
    "xaudit.plugins.shap_gradient": "xaudit.plugins.gradients.expected",
    "xaudit.plugins.shap_kernel": "xaudit.plugins.shapley.kernel",
    "xaudit.plugins.shap_permutation": "xaudit.plugins.shapley.permutation",
    "xaudit.plugins.shap_tree": "xaudit.plugins.shapley.tree",
}
"""Built-in plugin names before the family subpackages (0.1), accepted by the block list with a
warning until the next release."""

AUTOLOAD_ENV = "XAUDIT_DISABLE_PLUGIN_AUTOLOAD"
T = TypeVar("T")
P = TypeVar("P", bound=PluginParams)


@dataclass
class Host:
    """Loaded plugins and what they registered. Create one with :func:`create_host`."""

    pm: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    blocked: tuple[str, ...]
    blocked_entry_points: dict[str, PluginInfo] = field(default_factory=dict)
    """The blocked plugins that are installed, with the distribution holding each."""
    adapters: Registry[Adapter] = field(
        default_factory=lambda: Registry[Adapter]("adapter", Adapter)
    )
    explainers: Registry[Explainer] = field(
        default_factory=lambda: Registry[Explainer]("explainer", Explainer)
    )
    checks: Registry[Check] = field(default_factory=lambda: Registry[Check]("check", Check))
    report_sections: Registry[ReportSection] = field(
        default_factory=lambda: Registry[ReportSection]("report section", ReportSection)
    )

    def adapt(self, obj: object, adapter: str | None = None, **options: Any) -> Model:
        """Turn ``obj`` into a :class:`Model`.

        With ``adapter`` named, that adapter loads it. Otherwise the ``xaudit_adapt_model`` hook
        may claim it, and then registered adapters are asked in priority order.
        """
        if conforms(obj, Model) and adapter is None:
            return cast(Model, obj)
        if adapter is None:
            claimed = self.pm.hook.xaudit_adapt_model(obj=obj, options=dict(options))
            if claimed is not None:
                if not conforms(claimed, Model):
                    raise PluginError(f"xaudit_adapt_model returned {type(claimed).__name__}, "
                                      "which is not an xaudit Model")
                return cast(Model, claimed)
            ranked = sorted(self.adapters.items(), key=lambda item: -item[1].priority)
            chosen = next((cls for _, cls in ranked if cls.claims(obj)), None)
            if chosen is None:
                raise ModelLoadError(
                    f"no adapter claims {_describe_object(obj)}; registered adapters: "
                    f"{', '.join(self.adapters.names())}. Name one with adapter=..."
                )
        else:
            chosen = self.adapters.get(adapter)
        validated = validate_params(chosen.Options, options, f"adapter {chosen.name!r} options")
        return chosen.load(obj, validated)

    def explainer(self, method: str, params: dict[str, Any]) -> Explainer:
        """An instance of the explainer ``method`` with validated ``params``."""
        cls = self.explainers.get(method)
        return cls(validate_params(cls.Params, params, f"explainer {method!r} params"))

    def check(self, name: str, params: dict[str, Any]) -> Check:
        """An instance of the check ``name`` with validated ``params``."""
        cls = self.checks.get(name)
        return cls(validate_params(cls.Params, params, f"check {name!r} params"))

    def compatible_explainers(self, model: Model) -> list[str]:
        """Names of registered explainers whose needs ``model`` meets."""
        return [name for name, cls in self.explainers.items()
                if not unmet(model, cls.requires, cls.modalities)]

    def negotiate(self, method: str, model: Model) -> None:
        """Refuse, before any work, an explainer whose needs ``model`` does not meet."""
        cls = self.explainers.get(method)
        needs = unmet(model, cls.requires, cls.modalities)
        if needs:
            alternatives = ", ".join(self.compatible_explainers(model)) or "none"
            raise refusal(f"explainer {method!r}", needs, model,
                          f"explainers that work with this model: {alternatives}")

    def negotiate_check(self, name: str, model: Model,
                        params: dict[str, Any] | None = None) -> None:
        """Refuse, before any work, a check whose needs ``model`` does not meet.

        With ``params`` the check is asked with them (:meth:`Check.unmet`), so needs that
        depend on a parameter count too; without, its declared ``requires``.
        """
        needs = self.check(name, params).unmet(model) if params is not None else (
            unmet(model, self.checks.get(name).requires))
        if needs:
            raise refusal(f"check {name!r}", needs, model)

    def registries(self) -> dict[str, Registry[Any]]:
        """The registries, by the hook that fills each."""
        return {"xaudit_register_adapters": self.adapters,
                "xaudit_register_explainers": self.explainers,
                "xaudit_register_checks": self.checks,
                "xaudit_register_report_sections": self.report_sections}

    def describe(self) -> list[dict[str, Any]]:
        """Every loaded plugin with its version, what it registered and, under ``unavailable``,
        which of its adapters and explainers cannot run here and why (for ``xaudit plugins``)."""
        rows = []
        for info in self.plugins.values():
            row: dict[str, Any] = {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
            }
            for hook, registry in self.registries().items():
                key = hook.removeprefix("xaudit_register_")
                row[key] = [n for n in registry.names() if registry.origin(n) == info]
            row["unavailable"] = {
                name: reason for key in ("adapters", "explainers") for name in row[key]
                if (reason := unavailable_reason(getattr(self, key).get(name).extra))}
            rows.append(row)
        return rows

    def why_unknown(self, hook: str, name: str) -> str:
        """Why ``name`` may be missing from the registry ``hook`` fills: a blocked plugin that
        registers it (a built-in, asked directly; an installed plugin, by the name's prefix),
        else the blocked plugins, if any."""
        how = f"({BLOCK_OPTION} or {BLOCK_ENV})"
        for plugin in self.blocked:
            holder = (repr(plugin) if plugin in BUILTIN_PLUGINS
                      and name in _builtin_names(plugin, hook) else None)
            info = self.blocked_entry_points.get(plugin)
            if holder is None and info is not None and name.split(".")[0] == plugin:
                holder = f"{plugin!r} (distribution {info.distribution} {info.version})"
            if holder is not None:
                return (f"It is registered by plugin {holder}, which is blocked in this run "
                        f"{how}; unblock it to use {name!r}.")
        if not self.blocked:
            return ""
        return (f"Plugins blocked in this run {how}: {', '.join(self.blocked)}; if one of them "
                f"registers {name!r}, unblock it.")


def _describe_object(obj: object) -> str:
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        if not path.exists():
            return f"the model file {path} (it does not exist)"
        return f"the model file {path.name} (no adapter reads {path.suffix or 'suffix-less'} files)"
    text = repr(obj)
    short = text if len(text) <= 80 else text[:77] + "..."
    return f"{type(obj).__module__}.{type(obj).__qualname__} ({short})"


def validate_params(schema: type[P], params: dict[str, Any], what: str) -> P:
    """``params`` validated by ``schema``; errors name each offending field."""
    try:
        return schema.model_validate(params)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InputError(f"invalid {what}: {details}") from None


def _current_name(name: str) -> str:
    """``name``, or the current name of a built-in plugin blocked by its former name."""
    if name not in RENAMED_PLUGINS:
        return name
    warnings.warn(f"plugin name {name!r} is deprecated and will stop working in the next "
                  f"release; block {RENAMED_PLUGINS[name]!r} instead", FutureWarning,
                  stacklevel=3)
    return RENAMED_PLUGINS[name]


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def create_host(
    plugins: Sequence[str | object] = (),
    block: Sequence[str] = (),
    autoload: bool | None = None,
) -> Host:
    """A fresh host with built-in, entry-point and explicitly given plugins loaded.

    ``plugins``: extra plugin modules (import names) or objects to register.
    ``block``: plugin names not to load, added to ``XAUDIT_BLOCK_PLUGINS``.
    ``autoload``: load the ``xaudit`` entry-point group; defaults to true unless
    ``XAUDIT_DISABLE_PLUGIN_AUTOLOAD`` is set to a non-empty value.
    Raises :class:`~xaudit.errors.PluginError` naming the plugin, its distribution, the file
    and line at fault and the option that blocks it (see :mod:`xaudit.loader`).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = tuple(dict.fromkeys(_current_name(n) for n in [*_env_list(BLOCK_ENV), *block]))
    for name in blocked:
        pm.set_blocked(name)
    if autoload is None:
        autoload = not os.environ.get(AUTOLOAD_ENV)
    loaded = load_plugins(pm, BUILTIN_PLUGINS, plugins, autoload, __version__)
    host = Host(pm=pm, plugins=loaded.plugins, blocked=blocked,
                blocked_entry_points=loaded.blocked)
    for hook, registry in host.registries().items():
        registry.why_unknown = functools.partial(host.why_unknown, hook)
        fill(pm, loaded, hook, registry)
    return host


@lru_cache(maxsize=1)
def default_host() -> Host:
    """The host the public API uses when none is given (created on first use)."""
    return create_host()



@functools.cache
def _builtin_names(module_name: str, hook: str) -> frozenset[str]:
    """What the built-in plugin ``module_name`` registers through ``hook`` (asked only to
    explain an unknown name while that plugin is blocked)."""
    implementation = getattr(importlib.import_module(module_name), hook, None)
    if implementation is None:
        return frozenset()
    scratch: Registry[Any] = Registry("scratch", object)
    implementation(scratch)
    return frozenset(scratch.names())
