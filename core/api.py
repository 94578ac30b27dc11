"""The public Python API: ``adapt``, ``explain``, ``check``, ``run_suite`` and ``render``.

:func:`explain` and :func:`check` are the execution engine's own (:mod:`xaudit.engine`), which
the runner uses too, so one code path produces every explanation and check result. The engine's
helpers that plugins and tests use (:class:`CountingModel`, :func:`named_spec`,
:func:`gate_status`, :func:`error_info`) are importable from here as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .engine import CountingModel, check, error_info, explain, gate_status, named_spec
from .host import Host, default_host
from .model import Model
from .reports import write_outputs
from .reports.options import ReportOptions
from .results import AuditResult
from .runner import Runner
from .suite import Suite, load_suite

__all__ = ["CountingModel", "adapt", "check", "error_info", "explain", "gate_status",
           "named_spec", "render", "run_suite"]


def adapt(obj: object, *, adapter: str | None = None, host: Host | None = None,
          **options: Any) -> Model:
    """Wrap a model object or file into a :class:`~xaudit.model.Model`.

    ``adapter`` names the adapter (else one is chosen by claiming); ``options`` are that
    adapter's options (``trust=True`` to allow pickle files, ``output_names``, ``task``, ...).
    """
    return (host or default_host()).adapt(obj, adapter=adapter, **options)


def run_suite(suite: str | Path | Suite, *, host: Host | None = None,
              out_dir: str | Path | None = None, quiet: bool = True) -> AuditResult:
    """Run a suite (a path or a :class:`~xaudit.suite.Suite`) and return its result.

    With ``out_dir`` the results are also written there (``results.json``, ``arrays.npz`` and
    the suite's report formats): the folder is checked and locked before any work and replaced
    as a unit when complete (see ``docs/reports.md``, "The output folder").
    """
    loaded = suite if isinstance(suite, Suite) else load_suite(suite)
    runner = Runner(loaded, host or default_host(), quiet=quiet)
    if out_dir is None:
        return runner.run()
    return runner.run_and_write(Path(out_dir))[0]


def render(result: AuditResult, out_dir: str | Path,
           formats: Sequence[str] = ("json", "html", "pdf", "md", "junit"), *,
           host: Host | None = None, **report_options: Any) -> list[Path]:
    """Write ``result`` in the given formats as the folder ``out_dir``; returns the files
    written. The folder is replaced as a unit: it then holds exactly these files.

    ``report.html`` and ``report.pdf`` (PDF/A-3b with results.json and the suite attached) need
    the ``pdf`` extra. ``report_options`` override the suite's report block: ``pdf_variant``
    (``"pdf/a-3b"``, ``"pdf/a-3a"``, ``"pdf/ua-1"``, ``"plain"``), ``top_k``, ``local_rows``,
    ``max_subjects``, and give ``template_dir``, which is never read from ``result`` (a saved
    result is data: see :meth:`~xaudit.reports.options.ReportOptions.from_result`).
    """
    options = ReportOptions.from_result(result, **report_options)
    return write_outputs(result, Path(out_dir), formats, options=options,
                         host=host or default_host())
