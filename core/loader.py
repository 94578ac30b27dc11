"""Loading plugins into the host's pluggy manager, and filling the registries from them.

Plugins load, and later register their classes, in one deterministic order: the built-ins (in
:data:`xaudit.host.BUILTIN_PLUGINS` order), then entry-point plugins sorted by distribution
name and entry-point name, then the plugins given explicitly (``-p``, ``create_host(plugins=)``)
in the order given. So when two plugins register one name, the later one in this order is
refused (:meth:`xaudit.registry.Registry.add`) whatever order ``sys.path`` lists them in.

Every refusal is a :class:`~xaudit.errors.PluginError` in the shape :mod:`xaudit.blame`
describes: the plugin, its distribution and version, the file and line, and how to block it.
Besides what pluggy refuses, the loader refuses a function named after a hook but not marked
``@hookimpl`` (pluggy would silently skip it) and a marked function whose name is no hook, each
with the closest hook name.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.util
import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, distributions, packages_distributions, version
from typing import Any, TypeVar

import pluggy

from .blame import definition_site, failure_site, home_of, home_of_file
from .errors import PluginError
from .hookspecs import PROJECT
from .registry import PluginInfo, Registry

ENTRY_POINT_GROUP = "xaudit"
T = TypeVar("T")


@dataclass
class Loaded:
    """The plugins a host loaded, in load order, and the entry points it did not (blocked)."""

    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    blocked: dict[str, PluginInfo] = field(default_factory=dict)
    """Blocked entry-point plugins, by name, with the distribution that holds each."""


def load_plugins(pm: pluggy.PluginManager, builtins: Iterable[str], explicit: Iterable[object],
                 autoload: bool, builtin_version: str) -> Loaded:
    """Register built-in modules (as distribution ``xaudit`` ``builtin_version``), entry-point
    plugins (when ``autoload``) and ``explicit`` plugins (import names or objects) on ``pm``,
    skipping blocked names."""
    loaded = Loaded()
    for module_name in builtins:
        if not pm.is_blocked(module_name):
            _register(pm, loaded, importlib.import_module(module_name),
                      PluginInfo(module_name, "xaudit", builtin_version))
    if autoload:
        _load_entry_points(pm, loaded)
    for plugin in explicit:
        name = plugin if isinstance(plugin, str) else plugin_name(plugin)
        if pm.is_blocked(name):
            continue
        if isinstance(plugin, str):
            info = _local_info(plugin)
            obj = _imported(functools.partial(importlib.import_module, name), info, name,
                            explicit=True)
        else:
            obj, info = plugin, PluginInfo(name, "local", "")
        if pm.is_registered(obj):
            continue  # already loaded through its entry point
        _register(pm, loaded, obj, info)
    return loaded


def plugin_name(plugin: object) -> str:
    """The name a plugin object registers under: its ``__name__`` (modules, or an attribute
    set on purpose), else its class's dotted name."""
    name = getattr(plugin, "__name__", None)
    if isinstance(name, str):
        return name
    return f"{type(plugin).__module__}.{type(plugin).__qualname__}"


def _local_info(module: str) -> PluginInfo:
    """A ``-p`` module's plugin info: the distribution that installs it, else ``local``."""
    top = module.split(".")[0]
    holders = packages_distributions().get(top, [])
    if not holders:
        return PluginInfo(module, "local", "")
    return PluginInfo(module, holders[0], version(holders[0]))


def _load_entry_points(pm: pluggy.PluginManager, loaded: Loaded) -> None:
    found: list[tuple[str, EntryPoint, PluginInfo]] = []
    for dist in distributions():
        # entry points first: reading every distribution's METADATA (an e-mail parse each)
        # would cost a cold start about 0.2 s for the few that hold an xaudit plugin
        ours = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        if not ours:
            continue
        dist_name = dist.metadata["name"]
        found.extend((_normalized(dist_name), ep, PluginInfo(ep.name, dist_name, dist.version))
                     for ep in ours)
    found.sort(key=lambda item: (item[0], item[1].name))  # stable: sys.path order on a tie
    seen: dict[str, PluginInfo] = {}
    for key, ep, info in found:
        if ep.name in seen:
            first = seen[ep.name]
            if _normalized(first.distribution) == key:
                continue  # the same distribution twice on sys.path: the first one wins
            raise info.error(f"has the entry-point name of {first}; rename one of the two "
                             f"entry points in the [project.entry-points.{ENTRY_POINT_GROUP}] "
                             "table of its pyproject.toml")
        seen[ep.name] = info
        if pm.is_blocked(ep.name):
            loaded.blocked[ep.name] = info
            continue
        _register(pm, loaded, _imported(ep.load, info, ep.value), info)


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _imported(load: Callable[[], object], info: PluginInfo, target: str,
              explicit: bool = False) -> object:
    """``load()``, with an import failure turned into the plugin's error at its line."""
    try:
        return load()
    except Exception as exc:
        module = target.split(":")[0]
        missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None and (module == missing or module.startswith(missing + ".")):
            where = ("the current folder and sys.path; is it installed, or is the name "
                     "misspelled?" if explicit else "sys.path; reinstall the distribution")
            raise info.error(f"failed to import {target!r}: {exc} (looked in {where})") from exc
        raise info.error(f"failed to import {target!r}: {exc}",
                         failure_site(exc, _home_of_module(module))) from exc


def _home_of_module(module: str) -> str | None:
    """:func:`~xaudit.blame.home_of_file` for a module that failed to import, if found."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.has_location:
        return None
    return home_of_file(spec.origin)


def _register(pm: pluggy.PluginManager, loaded: Loaded, obj: object, info: PluginInfo) -> None:
    info = dataclasses.replace(info, home=home_of(obj))
    if info.name in loaded.plugins:
        raise info.error(f"has the name of {loaded.plugins[info.name]}, which is loaded "
                         "already; give one of them another name")
    _check_hook_names(pm, obj, info)
    try:
        pm.register(obj, name=info.name)
    except pluggy.PluginValidationError as exc:
        hook = re.search(r"for hook '(\w+)'", str(exc))
        site = definition_site(getattr(obj, hook.group(1), None)) if hook else None
        raise info.error(f"cannot be registered: {exc}", site) from None
    loaded.plugins[info.name] = info


def _check_hook_names(pm: pluggy.PluginManager, obj: object, info: PluginInfo) -> None:
    """Refuse hook-like functions pluggy would skip or reject, naming the closest hook."""
    hooks = sorted(name for name in vars(pm.hook) if not name.startswith("_"))
    names = vars(obj) if inspect.ismodule(obj) else dir(obj)
    for attr in sorted(n for n in names if n.startswith(f"{PROJECT}_")):
        function = getattr(obj, attr, None)
        if not inspect.isroutine(function):
            continue
        close = difflib.get_close_matches(attr, hooks, n=1, cutoff=0.8)
        opts = pm.parse_hookimpl_opts(obj, attr)
        site = definition_site(function)
        if opts is None and (attr in hooks or close):
            hook = attr if attr in hooks else close[0]
            mean = "" if attr == hook else f" (did you mean the hook {hook!r}?)"
            raise info.error(f"defines {attr}{mean} without @hookimpl, so xaudit would never "
                             "call it; decorate it with @xaudit.hookimpl", site)
        if opts is not None and attr not in hooks and not opts.get("optionalhook"):
            hint = f"did you mean {close[0]!r}?" if close else f"the hooks are {', '.join(hooks)}"
            raise info.error(f"implements unknown hook {attr!r}; {hint}", site)


def fill(pm: pluggy.PluginManager, loaded: Loaded, hook_name: str,
         registry: Registry[T]) -> None:
    """Call ``hook_name`` of every plugin, in load order, attributing what each adds."""
    implementations = {impl.plugin_name: impl
                       for impl in getattr(pm.hook, hook_name).get_hookimpls()}
    for name, info in loaded.plugins.items():
        impl = implementations.get(name)
        if impl is None:
            continue
        if impl.wrapper or impl.hookwrapper:
            raise info.error(f"implements {hook_name} as a hook wrapper; add classes to the "
                             "registry in a plain implementation", definition_site(impl.function))
        caller: Callable[..., Any] = impl.function
        with registry.adding_for(info):
            try:
                caller(**dict.fromkeys(impl.argnames, registry))
            except PluginError:
                raise
            except Exception as exc:
                raise info.error(f"failed in {hook_name}: {exc!r}",
                                 failure_site(exc, info.home)) from exc
