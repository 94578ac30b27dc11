"""Report outputs: ``results.json`` + ``arrays.npz``, ``summary.md`` and ``junit.xml``.

HTML and PDF reports render from the same saved :class:`~xaudit.results.AuditResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import InputError
from ..results import AuditResult
from .junit import write_junit
from .markdown import write_summary


def _write_json(result: AuditResult, out_dir: Path) -> Path:
    return result.save(out_dir)


WRITERS: dict[str, Callable[[AuditResult, Path], Path]] = {
    "json": _write_json,
    "md": write_summary,
    "junit": write_junit,
}


def write_outputs(result: AuditResult, out_dir: Path, formats: Sequence[str]) -> list[Path]:
    """Write ``result`` into ``out_dir`` in each of ``formats``; returns the files written."""
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise InputError(f"unknown report format(s) {', '.join(unknown)}; "
                         f"available: {', '.join(WRITERS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [WRITERS[f](result, out_dir) for f in dict.fromkeys(formats)]
