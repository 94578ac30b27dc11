"""The public Python API: ``adapt``, ``explain``, ``check``, ``run_suite``, ``render`` and
``from_shap``.

:func:`explain` and :func:`check` are the execution engine's own (:mod:`xaudit.engine`), which
the runner uses too, so one code path produces every explanation and check result. The engine's
helpers that plugins and tests use (:class:`CountingModel`, :func:`named_spec`,
:func:`gate_status`, :func:`error_info`) are importable from here as well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .baseline import approved_for
from .cache import ExplanationCache
from .engine import CountingModel, check, error_info, explain, gate_status, named_spec
from .explanation import Explanation
from .external import from_shap
from .host import Host, default_host
from .model import Model
from .reports import write_outputs
from .reports.options import ReportOptions
from .results import AuditResult, CheckResult
from .runner import Runner
from .standalone import standalone_result
from .suite import Suite, load_suite, parse_suite
from .suite_checks import check_against_host

__all__ = ["CountingModel", "adapt", "check", "error_info", "explain", "from_shap",
           "gate_status", "named_spec", "render", "run_suite"]


def adapt(obj: object, *, adapter: str | None = None, host: Host | None = None,
          **options: Any) -> Model:
    """Wrap a model object or file into a :class:`~xaudit.model.Model`.

    ``adapter`` names the adapter (else one is chosen by claiming); ``options`` are that
    adapter's options (``trust=True`` to allow pickle files, ``output_names``, ``task``, ...).
    """
    return (host or default_host()).adapt(obj, adapter=adapter, **options)


def run_suite(suite: str | Path | Suite | Mapping[str, Any], *, host: Host | None = None,
              out_dir: str | Path | None = None, quiet: bool = True,
              baseline: str | Path | None = None, cache: str | Path | None = None,
              progress: bool = False) -> AuditResult:
    """Run a suite and return its result.

    ``suite`` is a suite file's path, a :class:`~xaudit.suite.Suite`, or a mapping with the
    suite file's fields (relative paths resolve against the working folder), in which the
    model may be an object (``model: {"object": estimator}``) and the data an in-memory pandas
    DataFrame (``data: {"frame": df, "target": "y"}``) or arrays (``data: {"X": X, "y": y}``).
    The provenance then hashes the objects: the model's fingerprint as for a file, the data
    over the frame's values, columns and index (or the arrays' bytes). With ``out_dir`` the
    results are also written there (``results.json``, ``arrays.npz``, the suite's report
    formats, ``comparison.json`` with a baseline, and ``manifest.json``): the folder is checked
    and locked before any work and replaced as a unit when complete (see ``docs/reports.md``,
    "The output folder"), and the result's :attr:`~xaudit.AuditResult.files` lists the files
    written. ``baseline`` is the approved run's results folder that drift checks and relative
    gates compare with (default: the suite's ``baseline:``). With ``cache`` (a folder)
    explanations whose inputs are unchanged are reused from it (:mod:`xaudit.cache`).
    ``progress=True`` (or ``quiet=False``) shows which explainer or check runs, rows done and
    time left on stderr.
    """
    host = host or default_host()
    if isinstance(suite, Suite):
        loaded = suite
    elif isinstance(suite, Mapping):
        loaded = parse_suite(dict(suite), "suite mapping", Path.cwd(), objects_allowed=True)
        check_against_host(loaded, host, "suite mapping")
    else:
        loaded = load_suite(suite)
    runner = Runner(loaded, host, quiet=quiet and not progress,
                    baseline=approved_for(loaded, baseline),
                    cache=None if cache is None else ExplanationCache(cache))
    if out_dir is None:
        return runner.run()
    result, written = runner.run_and_write(Path(out_dir))
    result.files = written
    return result


def render(result: AuditResult | Explanation | CheckResult, out_dir: str | Path,
           formats: Sequence[str] = ("json", "html", "pdf", "md", "junit"), *,
           host: Host | None = None, explanation: Explanation | None = None,
           model: Any = None, **report_options: Any) -> list[Path]:
    """Write ``result`` in the given formats as the folder ``out_dir``; returns the files
    written. The folder is replaced as a unit: it then holds exactly these files and their
    ``manifest.json`` (the last path returned; so an audit result's
    :attr:`~xaudit.AuditResult.files` forgets what it listed in that folder before).

    ``result`` is an audit result, or a single explanation or check result: that is reported
    alone (overview, data, method, global and local explanations, the check with its verdict;
    see :mod:`xaudit.standalone`); give a check result's ``explanation`` to show it too, and
    ``model`` to describe and fingerprint the model in the report. ``report.html`` needs
    the ``html`` extra and ``report.pdf`` (PDF/A-3b with results.json and the suite attached)
    the ``pdf`` extra; without them :class:`~xaudit.extras.MissingExtraError` names the extra
    before anything is written. ``report_options`` override the suite's report block:
    ``pdf_variant`` (``"pdf/a-3b"``, ``"pdf/a-3a"``, ``"pdf/ua-1"``, ``"plain"``), ``top_k``,
    ``local_rows``, ``max_subjects``, and give ``template_dir``, which is never read from
    ``result`` (a saved result is data: see
    :meth:`~xaudit.reports.options.ReportOptions.from_result`).
    """
    host = host or default_host()
    audit = result if isinstance(result, AuditResult) else standalone_result(
        result, host, explanation=explanation, model=model)
    options = ReportOptions.from_result(audit, **report_options)
    written = write_outputs(audit, Path(out_dir), formats, options=options, host=host)
    if audit is result:
        folder = Path(out_dir).resolve()
        result.files = [*(f for f in result.files if f.resolve().parent != folder), *written]
    return written
