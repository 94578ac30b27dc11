"""The ``xaudit`` command line: run, validate, explain, report, diff, verify, keygen and
plugins.

Exit codes follow pytest's (see :class:`~xaudit.exitcodes.ExitCode`): 0 every gate passed,
1 a gate failed (``verify``: a file changed), 2 interrupted (SIGINT, SIGTERM: nothing
published), 3 something crashed (results still written, or nothing published when writing
them failed), 4 invalid suite, inputs, output folder or usage (nothing run), 5 no gate
evaluated. An exit (``sys.exit``) from user or plugin code never ends the command with its
code: it is an error like any other.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import numpy as np

from .auto import RULE
from .baseline import approved_for, load_approved, load_results
from .cache import CACHE_ENV, ExplanationCache
from .comparison import compare, write_comparison
from .errors import InputError, SuiteError, WriteError, XauditError
from .exitcodes import ExitCode
from .extras import require_extra
from .host import Host, create_host
from .integrations.mlflow import log_audit, require_mlflow
from .output_folder import OutputFolder, same_folder
from .reports import FORMATS, WrittenOutputs, write_outputs
from .reports.options import ReportOptions
from .reports.signature_fields import signature_line
from .results import AuditResult
from .runner import Runner
from .safe_text import one_line, printable
from .scaffold import names, new_plugin
from .signing import generate_keypair, load_private_key
from .suite import parse_suite
from .suite_checks import check_against_host, validate_suite
from .verdict import policy_note
from .verify import verify_folder
from .version import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.INVALID), f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(prog="xaudit", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"xaudit {__version__}")
    _add_verbosity(parser, argparse.SUPPRESS)
    parser.add_argument("-p", "--plugin", action="append", default=[], metavar="MODULE",
                        help="load MODULE as a plugin (repeatable); modules in the current "
                             "folder are found, as with python -m")
    parser.add_argument("--block-plugin", action="append", default=[], metavar="NAME",
                        help="do not load the plugin NAME (repeatable; adds to "
                             "XAUDIT_BLOCK_PLUGINS)")
    parser.add_argument("--no-autoload", action="store_true",
                        help="skip entry-point plugins (as XAUDIT_DISABLE_PLUGIN_AUTOLOAD=1)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _Parser(add_help=False)  # -v/-q also after the subcommand
    _add_verbosity(common, argparse.SUPPRESS)

    run = sub.add_parser("run", parents=[common],
                         help="run a suite and write its results")
    run.add_argument("suite", type=Path)
    run.add_argument("--out", type=Path, help="output folder (default: the suite's "
                     "report.out_dir, relative to the suite file)")
    run.add_argument("--fail-on-warn", action="store_true",
                     help="a gate that warns fails the run (exit 1); recorded with the results, "
                          "so every output states the same verdict (suite: gate_policy)")
    run.add_argument("--formats", help="comma-separated outputs instead of the suite's "
                     "report.formats: html, pdf, md, junit, json (results.json and arrays.npz "
                     "are always written)")
    run.add_argument("--cache", type=Path, metavar="DIR",
                     help=f"reuse explanations whose inputs are unchanged (default: "
                          f"${CACHE_ENV} when set)")
    run.add_argument("--no-cache", action="store_true", help=f"ignore ${CACHE_ENV}")
    run.add_argument("--sign-key", type=Path, metavar="KEY",
                     help="sign manifest.json with this Ed25519 private key (xaudit keygen)")
    run.add_argument("--mlflow", action="store_true",
                     help="log gate values, verdict, hashes and the results folder to MLflow "
                          "(the active run, or a new one on $MLFLOW_TRACKING_URI)")
    run.add_argument("--mlflow-uri", metavar="URI",
                     help="MLflow tracking URI (implies --mlflow)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="explain row-parallel explainers on the Dask scheduler at ADDRESS "
                     "(tcp://host:8786), overriding the suite's execution: (needs xaudit[dask])")
    run.add_argument("--baseline", type=Path, metavar="DIR",
                     help="the approved run's results folder: drift checks and gates relative "
                          "to the baseline compare with it (default: the suite's baseline:)")
    run.add_argument("--allow-feature-changes", action="store_true",
                     help="compare with a baseline whose features differ (as the suite's "
                          "baseline.feature_changes: compare)")

    validate = sub.add_parser("validate", parents=[common],
                              help="check suites without running them")
    validate.add_argument("suites", type=Path, nargs="+", metavar="suite")
    validate.add_argument("--no-dependency-check", action="store_true",
                          help="do not require the extras the data, the model and the report "
                               "formats need (for hooks that validate suites where they are "
                               "not run)")

    plugins = sub.add_parser("plugins", parents=[common],
                             help="list plugins and what they register")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")

    explain = sub.add_parser("explain", parents=[common],
                             help="one-off explanation of a model on a dataset")
    explain.add_argument("--model", required=True,
                         help="model file, or module:factory (called with the Dataset)")
    explain.add_argument("--data", required=True, help="CSV/Parquet/NPZ file or sklearn:NAME")
    explain.add_argument("--target", help="label column of the data file")
    explain.add_argument("--method", default="auto",
                         help="a registered explainer, or auto (the default): chosen from the "
                              "model's capabilities, as `xaudit plugins` describes")
    explain.add_argument("--params", default="{}", help="method parameters as JSON")
    explain.add_argument("--rows", type=int, default=20, help="number of rows to explain")
    explain.add_argument("--trust", action="store_true", help="allow pickle/joblib model files")
    explain.add_argument("--out", type=Path, default=Path("xaudit-explain"))

    diff = sub.add_parser("diff", parents=[common],
                          help="compare a saved run with the approved run's, without "
                               "re-running anything")
    diff.add_argument("baseline", type=Path, help="the approved run's results folder")
    diff.add_argument("candidate", type=Path, help="the results folder to compare with it")
    diff.add_argument("--out", type=Path, help="folder for comparison.json (default: the "
                      "candidate folder; never the baseline's)")
    diff.add_argument("--allow-feature-changes", action="store_true",
                      help="compare runs whose features differ")

    report = sub.add_parser("report", parents=[common],
                            help="re-render outputs from a saved results folder")
    report.add_argument("results", type=Path)
    report.add_argument("--formats", default="html,pdf,md,junit",
                        help="comma-separated formats: html, pdf, md, junit, json "
                             "(default: html,pdf,md,junit)")
    report.add_argument("--out", type=Path, help="output folder (default: the results folder)")
    report.add_argument("--pdf-variant", choices=["pdf/a-3b", "pdf/a-3a", "pdf/ua-1", "plain"],
                        help="PDF profile (default: the suite's report.pdf_variant, pdf/a-3b)")
    report.add_argument("--template-dir", type=Path,
                        help="folder of Jinja2 templates overriding the built-in ones")
    report.add_argument("--sign-key", type=Path, metavar="KEY",
                        help="sign the rewritten manifest.json with this Ed25519 private key")

    verify = sub.add_parser("verify", parents=[common],
                            help="check a results folder against its manifest.json")
    verify.add_argument("folder", type=Path)
    verify.add_argument("--public-key", type=Path, metavar="PUB",
                        help="also require a valid manifest.sig by this Ed25519 public key")

    keygen = sub.add_parser("keygen", parents=[common],
                            help="create an Ed25519 key pair for --sign-key")
    keygen.add_argument("key", type=Path, help="private key file to create (KEY.pub beside it)")

    scaffold = sub.add_parser("new-plugin", parents=[common],
                              help="write a plugin package to start from")
    scaffold.add_argument("name", help="the plugin's name (lower case; prefixes its methods)")
    scaffold.add_argument("--dir", type=Path, help="where to write it (default: "
                          "./xaudit-plugin-NAME); must not exist or be empty")
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=default,
                        help="log more (-v: each step, -vv: debugging detail) on stderr")
    parser.add_argument("-q", "--quiet", action="count", default=default,
                        help="no progress and only errors logged; the verdict and the "
                             "command's output are still printed")


def configure_logging(verbose: int, quiet: int) -> None:
    """Log records of the ``xaudit`` logger on stderr: warnings by default, ``-v`` info,
    ``-vv`` debug, ``-q`` errors only. Nothing is configured for the Python API, where the
    application decides (the library adds no handler but logging's last resort)."""
    level = (logging.ERROR if quiet else logging.DEBUG if verbose >= 2 else
             logging.INFO if verbose == 1 else logging.WARNING)
    logger = logging.getLogger("xaudit")
    logger.setLevel(level)
    if not any(getattr(h, "xaudit_cli", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_PrintableFormatter("xaudit: %(levelname)s: %(message)s"))
        handler.xaudit_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


class _PrintableFormatter(logging.Formatter):
    """Log lines with control and bidirectional characters shown as escapes: names and
    messages from a suite, data or a model cannot rewrite the console."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is logged (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xaudit`` command; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors (4), --help (0): return, as documented
        return exc.code if isinstance(exc.code, int) else int(ExitCode.INVALID)
    verbose, quiet = getattr(args, "verbose", 0), getattr(args, "quiet", 0)
    configure_logging(verbose, quiet)
    args.quiet = bool(quiet)
    if args.plugin and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as ``python -m xaudit`` would: -p finds local modules
    try:
        if args.command == "new-plugin":  # needs no host: a broken install must not stop it
            return _new_plugin(args)
        with _terminate_as_interrupt(), warnings.catch_warnings():
            warnings.showwarning = _show_warning
            host = create_host(plugins=args.plugin, block=args.block_plugin,
                               autoload=False if args.no_autoload else None)
            handler = {"run": _run, "validate": _validate, "plugins": _plugins,
                       "explain": _explain, "report": _report, "diff": _diff,
                       "verify": _verify, "keygen": _keygen}[args.command]
            return handler(args, host)
    except BrokenPipeError:  # the reader left (xaudit plugins | head): stop quietly
        _silence_stdout()
        return int(ExitCode.OK)
    except SuiteError as exc:
        print(f"xaudit: {printable(exc)}", file=sys.stderr)
        return int(ExitCode.INVALID)
    except WriteError as exc:
        print(f"xaudit: error: {printable(exc)}", file=sys.stderr)
        return int(ExitCode.CRASHED)
    except XauditError as exc:
        print(f"xaudit: error: {printable(exc)}", file=sys.stderr)
        return int(ExitCode.INVALID)
    except KeyboardInterrupt as exc:
        print(f"xaudit: interrupted{f' by {exc}' if str(exc) else ''}; nothing unfinished was "
              "published: the output folder holds the last complete run, if any",
              file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BaseException:  # an exit (sys.exit) from plugin code too: a crash, never exit 0
        print(printable(traceback.format_exc()), end="", file=sys.stderr)
        return int(ExitCode.CRASHED)


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    """Python warnings (a bad cache entry, ...) as warnings of the ``xaudit`` logger, so
    ``-q`` silences them like every other message but errors."""
    logging.getLogger("xaudit").warning("%s", message)


def _formats(text: str) -> list[str]:
    chosen = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise InputError(f"--formats: unknown or no format(s) {', '.join(unknown)}; choose "
                         f"from {', '.join(FORMATS)}")
    return chosen


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Let SIGTERM interrupt the command as SIGINT does (``KeyboardInterrupt("SIGTERM")``), so
    a terminated run removes its unfinished output; the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _list_failed_sections(written: WrittenOutputs) -> bool:
    """Print the report sections that failed to stderr; whether there were any."""
    for line in written.failed_sections:
        print(f"xaudit: report {line}", file=sys.stderr)
    return bool(written.failed_sections)


def _run(args: argparse.Namespace, host: Host) -> int:
    # --formats replaces the suite's formats: their extras are checked with the formats used,
    # when the runner prepares (before any work), not with the ones it replaces
    suite = validate_suite(args.suite, host, dependencies=args.formats is None)
    if args.fail_on_warn:
        suite.gate_policy = suite.gate_policy.model_copy(update={"fail_on_warn": True})
    if args.formats is not None:
        suite.report = suite.report.model_copy(update={"formats": _formats(args.formats)})
    if args.scheduler is not None:
        require_extra("dask", "--scheduler")
        suite.execution = suite.execution.model_copy(
            update={"engine": "dask", "address": args.scheduler, "n_workers": None})
    if args.sign_key is not None:
        load_private_key(args.sign_key)  # a bad key is refused before anything runs
    mlflow = args.mlflow or args.mlflow_uri is not None
    if mlflow:
        require_mlflow()
    folder = None if args.no_cache else args.cache or os.environ.get(CACHE_ENV) or None
    out = args.out or suite.base_dir / suite.report.out_dir
    runner = Runner(suite, host, quiet=args.quiet,
                    baseline=approved_for(suite, args.baseline, args.allow_feature_changes),
                    cache=None if folder is None else ExplanationCache(folder))
    result, written = runner.run_and_write(out, sign_key=args.sign_key)
    code = result.exit_code()
    if _list_failed_sections(written):
        code = ExitCode.CRASHED
    _print_to_reader(lambda: _print_verdict(result, code, written))
    if mlflow:
        try:
            run_id = log_audit(result, written[0].parent, tracking_uri=args.mlflow_uri)
        except Exception as exc:  # the audit ran; say what failed and exit as a crash
            print(f"xaudit: logging to MLflow failed: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            return int(ExitCode.CRASHED)
        _print_to_reader(lambda: print(f"logged to MLflow run {run_id}"))
    return int(code)


def _print_to_reader(say: Callable[[], None]) -> None:
    """Run ``say`` (printing to stdout); a reader that left (a closed pipe) silences stdout
    instead of changing the exit code, which still tells the verdict."""
    try:
        say()
    except BrokenPipeError:
        _silence_stdout()


def _diff(args: argparse.Namespace, host: Host) -> int:
    out = args.out or args.candidate
    if same_folder(out, args.baseline):
        raise InputError(f"xaudit diff never writes into the baseline folder {args.baseline}; "
                         "give another --out")
    approved = load_approved(args.baseline, args.allow_feature_changes)
    candidate, _ = load_results(args.candidate, "candidate")
    comparison = compare(approved.result, candidate, host=host,
                         feature_changes=approved.feature_changes,
                         baseline_path=args.baseline, candidate_path=args.candidate)
    print("\n".join(comparison.lines()))
    print(f"comparison written to {write_comparison(comparison, out)}")
    return int(ExitCode.OK)


def _print_verdict(result: AuditResult, code: ExitCode, written: list[Path]) -> None:
    """One line per check and crash, then the verdict; names and messages on one line each,
    their control characters shown as escapes (a name cannot forge a line of the verdict)."""
    for check in result.checks:
        note = policy_note(check.status, result.gate_policy)
        print(one_line(f"{check.verdict()}: {note}" if note else check.verdict()))
    for key, error in result.explainer_errors.items():
        print(one_line(f"explainer {key}: error: {error}"))
    counts = result.counts()
    print(f"{one_line(result.suite_name)}: {code.name} (exit {int(code)}); "
          f"{counts['checks_pass']} passed, {counts['checks_fail']} failed, "
          f"{counts['checks_warn']} warned, "
          f"{counts['checks_error'] + counts['explainers_crashed']} crashed")
    if written:
        print(f"results written to {one_line(written[0].parent)}")


def _validate(args: argparse.Namespace, host: Host) -> int:
    code = ExitCode.OK
    for path in args.suites:
        try:
            suite = validate_suite(path, host, dependencies=not args.no_dependency_check)
        except SuiteError as exc:
            print(f"xaudit: {printable(exc)}", file=sys.stderr)
            code = ExitCode.INVALID
            continue
        print(f"{printable(path)}: valid ({len(suite.explainers)} explainer(s), "
              f"{len(suite.checks)} check(s))")
    return int(code)


def _plugins(args: argparse.Namespace, host: Host) -> int:
    rows = host.describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return int(ExitCode.OK)
    for row in rows:
        print(f"{row['name']} ({row['distribution']} {row['version']})")
        for kind in ("adapters", "explainers", "checks", "report_sections"):
            if row[kind]:
                print(f"  {kind.replace('_', ' ')}: {', '.join(row[kind])}")
        for name, reason in row["unavailable"].items():
            print(f"  cannot run here: {name} ({reason})")
    print(f"method auto: {RULE}")
    return int(ExitCode.OK)


def _explain(args: argparse.Namespace, host: Host) -> int:
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        raise InputError(f"--params is not valid JSON: {exc}") from None
    is_factory = ":" in args.model and not Path(args.model).exists()
    model: dict[str, Any] = {"trust": args.trust}
    if is_factory:
        model["factory"] = args.model
    else:
        model["path"] = str(Path(args.model).resolve())
    data = args.data if args.data.startswith("sklearn:") else str(Path(args.data).resolve())
    suite = parse_suite({
        "name": f"explain {args.method}",
        "model": model,
        "data": {"source": data, "target": args.target, "explain": {"n": args.rows}},
        "explainers": [{"id": "explanation", "method": args.method, "params": params}],
        "report": {"formats": ["json"]},
    }, "command line", Path.cwd())
    check_against_host(suite, host, "command line")
    result, _ = Runner(suite, host, quiet=True).run_and_write(args.out)
    if "explanation" in result.explainer_errors:
        print(f"xaudit: explainer crashed: {printable(result.explainer_errors['explanation'])}",
              file=sys.stderr)
        return int(ExitCode.CRASHED)
    explanation = result.explanations["explanation"]
    importance = np.abs(explanation.values).mean(axis=0).reshape(-1, explanation.values.shape[-1])
    print(f"mean |attribution| over {explanation.n_rows} rows ({args.method}):")
    order = np.argsort(-importance.sum(axis=1))
    for i in order[:20]:
        cells = "  ".join(f"{v:.4g}" for v in importance[i])
        print(f"  {one_line(explanation.feature_names[i]):<30} {cells}")
    print(f"results written to {args.out}")
    return int(ExitCode.OK)


def _report(args: argparse.Namespace, host: Host) -> int:
    formats = _formats(args.formats)
    if args.sign_key is not None:
        load_private_key(args.sign_key)
    out = args.out or args.results
    in_place = os.path.realpath(out) == os.path.realpath(args.results)
    # In place, the folder is locked before it is read, so no run replaces it meanwhile, and
    # the results and the formats not rendered again are kept.
    with OutputFolder(out, keep=in_place) as folder:
        result = AuditResult.load(args.results)
        options = None
        if {"html", "pdf"} & set(formats):
            options = ReportOptions.from_result(result, pdf_variant=args.pdf_variant,
                                                template_dir=args.template_dir)
        written = write_outputs(result, folder, formats, options=options, host=host,
                                sign_key=args.sign_key)
    for path in written:
        print(path)
    return int(ExitCode.CRASHED if _list_failed_sections(written) else ExitCode.OK)


def _new_plugin(args: argparse.Namespace) -> int:
    folder = args.dir or Path(names(args.name)["dist"])
    for path in new_plugin(args.name, folder):
        print(path)
    print(f"next: pip install -e '{folder}[test]' && pytest {folder}")
    return int(ExitCode.OK)


def _verify(args: argparse.Namespace, host: Host) -> int:
    found = verify_folder(args.folder, args.public_key)
    for finding in found.findings:
        print(f"CHANGED {finding}")
    signature = f"signature {found.signature}"
    if found.pdf_signatures is not None:
        print(f"{args.folder}: report.pdf: {signature_line(found.pdf_signatures)}")
    if found.ok:
        print(f"{args.folder}: verified ({len(found.checked)} file(s) match manifest.json; "
              f"{signature})")
        return int(ExitCode.OK)
    print(f"{args.folder}: NOT verified: {len(found.findings)} problem(s); {signature}")
    return int(ExitCode.GATE_FAILED)


def _keygen(args: argparse.Namespace, host: Host) -> int:
    private, public = generate_keypair(args.key)
    print(f"private key (keep secret; give to --sign-key): {private}")
    print(f"public key (share; give to xaudit verify --public-key): {public}")
    return int(ExitCode.OK)


if __name__ == "__main__":
    raise SystemExit(main())
