"""Provenance: versions, platform, plugins and the command, recorded with every audit."""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .host import Host
from .version import __version__

TRACKED_PACKAGES = (
    "numpy", "scipy", "pandas", "pydantic", "pluggy", "PyYAML", "Jinja2", "scikit-learn",
    "torch", "onnx", "onnxruntime", "keras", "xgboost", "lightgbm", "skops", "weasyprint",
    "matplotlib", "numba",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that can change an audit's numbers."""
    found = {}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def environment(host: Host) -> dict[str, Any]:
    """Python, platform, package and plugin versions, and the command line."""
    return {
        "xaudit_version": __version__,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": package_versions(),
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version}
            for p in host.plugins.values()
        ],
        "blocked_plugins": list(host.blocked),
        "command": " ".join(sys.argv),
    }


def utc_now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")
