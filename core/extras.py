"""Optional installs: which extra provides which packages, and clear refusals when one is missing.

A feature that needs an optional package asks :func:`require_extra` (or
:func:`import_from_extra`) before any work, so a bare install answers with the extra to
install (``pip install 'xaudit[pdf]'``) and exit code 4, never with a ``ModuleNotFoundError``
traceback. The table mirrors ``[project.optional-dependencies]`` in ``pyproject.toml``; a test
keeps the two in step.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from types import ModuleType

from .errors import InputError

EXTRAS: Mapping[str, tuple[str, ...]] = {
    "data": ("pandas",),
    "parquet": ("pandas", "pyarrow"),
    "sklearn": ("sklearn", "pandas", "skops"),
    "torch": ("torch",),
    "onnx": ("onnx", "onnxruntime"),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
    "html": ("matplotlib", "fontTools"),
    "pdf": ("matplotlib", "fontTools", "weasyprint"),
    "image": ("skimage",),
    "dask": ("dask", "distributed", "zarr"),
    "mlflow": ("mlflow",),
    "sign": ("cryptography",),
    "verify": ("pypdf", "cryptography"),
}
"""Extra name -> the import names it makes available."""

MODEL_FILE_EXTRAS: Mapping[str, str] = {
    ".skops": "sklearn", ".joblib": "sklearn", ".pt": "torch", ".pth": "torch", ".pt2": "torch",
    ".onnx": "onnx",
}
"""Model file suffix -> the extra whose adapter reads it."""

REPORT_EXTRAS: Mapping[str, str] = {"html": "html", "pdf": "pdf"}
"""Report format -> the extra that renders it (the other formats need no extra)."""


class MissingExtraError(InputError):
    """A feature needs an optional package that is not installed; ``extra`` names the extra
    that installs it and ``missing`` the import names not found."""

    def __init__(self, purpose: str, extra: str, missing: tuple[str, ...]) -> None:
        self.extra = extra
        self.missing = missing
        super().__init__(f"{purpose} needs {' and '.join(missing)}, which "
                         f"{'is' if len(missing) == 1 else 'are'} not installed: "
                         f"pip install 'xaudit[{extra}]'")


def missing_packages(extra: str) -> tuple[str, ...]:
    """The import names of ``extra`` that cannot be found here (nothing is imported)."""
    return tuple(name for name in EXTRAS[extra] if not _installed(name))


def unavailable_reason(extra: str | None) -> str:
    """Why something needing ``extra`` cannot run here (``""``: it can)."""
    if extra is None:
        return ""
    missing = missing_packages(extra)
    return (f"needs xaudit[{extra}]: {', '.join(missing)} not installed" if missing else "")


def require_extra(extra: str, purpose: str) -> None:
    """Raise :class:`MissingExtraError` naming ``purpose`` when ``extra`` is not installed."""
    missing = missing_packages(extra)
    if missing:
        raise MissingExtraError(purpose, extra, missing)


def import_from_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """``module`` imported, or :class:`MissingExtraError` naming ``extra`` and ``purpose``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(purpose, extra, (module.split(".")[0],)) from None


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken stub module
        return False
