"""The plugin host: a pluggy manager plus the typed registries that plugins fill.

:func:`create_host` has no import-time side effects: it registers the built-in plugin modules
(ordinary plugins, registered exactly as third-party ones are), loads third-party plugins from
the ``xaudit`` entry-point group unless ``XAUDIT_DISABLE_PLUGIN_AUTOLOAD=1``, skips every name on
the block list (``XAUDIT_BLOCK_PLUGINS=a,b`` or ``block=``), and then asks each plugin to
register its adapters, explainers, checks and report sections.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import pluggy
from pydantic import ValidationError

from . import hookspecs
from .capabilities import refusal, unmet
from .errors import InputError, ModelLoadError, PluginError
from .model import Model
from .plugin import Adapter, Check, Explainer, PluginParams, ReportSection
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

ENTRY_POINT_GROUP = "xaudit"
AUTOLOAD_ENV = "XAUDIT_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV = "XAUDIT_BLOCK_PLUGINS"

T = TypeVar("T")
P = TypeVar("P", bound=PluginParams)


@dataclass
class Host:
    """Loaded plugins and what they registered. Create one with :func:`create_host`."""

    pm: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    blocked: tuple[str, ...]
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
        if isinstance(obj, Model) and adapter is None:
            return obj
        if adapter is None:
            claimed = self.pm.hook.xaudit_adapt_model(obj=obj, options=dict(options))
            if claimed is not None:
                if not isinstance(claimed, Model):
                    raise PluginError(f"xaudit_adapt_model returned {type(claimed).__name__}, "
                                      "which is not an xaudit Model")
                return claimed
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

    def describe(self) -> list[dict[str, Any]]:
        """Every loaded plugin with its version and what it registered (for ``xaudit plugins``)."""
        registries: dict[str, Registry[Any]] = {
            "adapters": self.adapters,
            "explainers": self.explainers,
            "checks": self.checks,
            "report_sections": self.report_sections,
        }
        rows = []
        for info in self.plugins.values():
            row: dict[str, Any] = {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
            }
            for key, registry in registries.items():
                row[key] = [n for n in registry.names() if registry.origin(n) == info]
            rows.append(row)
        return rows


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
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = tuple(dict.fromkeys(_current_name(n) for n in [*_env_list(BLOCK_ENV), *block]))
    for name in blocked:
        pm.set_blocked(name)
    infos: dict[str, PluginInfo] = {}
    for module_name in BUILTIN_PLUGINS:
        if not pm.is_blocked(module_name):
            _register(pm, infos, importlib.import_module(module_name), module_name,
                      PluginInfo(module_name, "xaudit", __version__))
    if autoload is None:
        autoload = not os.environ.get(AUTOLOAD_ENV)
    if autoload:
        _load_entry_points(pm, infos)
    for plugin in plugins:
        name = plugin if isinstance(plugin, str) else getattr(plugin, "__name__", repr(plugin))
        if pm.is_blocked(name):
            continue
        obj = importlib.import_module(plugin) if isinstance(plugin, str) else plugin
        _register(pm, infos, obj, name, PluginInfo(name, "local", ""))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"{infos.get(name, name)}: {exc}") from None
    host = Host(pm=pm, plugins=infos, blocked=blocked)
    _fill(pm, infos, "xaudit_register_adapters", host.adapters)
    _fill(pm, infos, "xaudit_register_explainers", host.explainers)
    _fill(pm, infos, "xaudit_register_checks", host.checks)
    _fill(pm, infos, "xaudit_register_report_sections", host.report_sections)
    return host


def _register(
    pm: pluggy.PluginManager, infos: dict[str, PluginInfo], obj: object, name: str,
    info: PluginInfo,
) -> None:
    try:
        pm.register(obj, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"{info} cannot be registered: {exc}") from None
    infos[name] = info


def _load_entry_points(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
    from importlib.metadata import distributions

    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.is_blocked(ep.name) or ep.name in infos:
                continue
            info = PluginInfo(ep.name, dist.metadata["name"], dist.version)
            try:
                obj = ep.load()
            except Exception as exc:
                raise PluginError(f"{info} failed to import {ep.value!r}: {exc}") from exc
            _register(pm, infos, obj, ep.name, info)


def _fill(
    pm: pluggy.PluginManager, infos: dict[str, PluginInfo], hook_name: str, registry: Registry[T]
) -> None:
    # Called per implementation, in registration order (built-ins first, so a third-party
    # duplicate of a built-in name is the one refused), to attribute each class to its plugin.
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        info = infos.get(impl.plugin_name, PluginInfo(impl.plugin_name, "unknown", ""))
        if impl.wrapper or impl.hookwrapper:
            raise PluginError(f"{info}: {hook_name} cannot be a hook wrapper; add classes to "
                              "the registry in a plain implementation")
        caller: Callable[..., Any] = impl.function
        with registry.adding_for(info):
            try:
                caller(**dict.fromkeys(impl.argnames, registry))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"{info} failed in {hook_name}: {exc!r}") from exc


@lru_cache(maxsize=1)
def default_host() -> Host:
    """The host the public API uses when none is given (created on first use)."""
    return create_host()

