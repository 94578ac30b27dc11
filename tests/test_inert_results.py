"""A results folder is inert data, and templates cannot run code.

The hostile template below asks Jinja2 to run ``touch MARKER`` through
``cycler.__init__.__globals__.os``, the route that executed on an unsandboxed environment. The
oracle is the file system: the marker must never appear, whether the template folder is named
in the saved results (ignored), given with ``--template-dir`` (sandboxed) or named by a suite
(sandboxed, resolved against the suite's folder). Malformed results folders give exit 4 and a
message, never a traceback.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jinja2 import TemplateNotFound

pytest.importorskip("matplotlib")

from reports_support import make_result

from xaudit.cli import main
from xaudit.reports.templating import ConfinedLoader, build_environment


def payload(marker: Path) -> str:
    return "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"


def hostile_folder(tmp_path: Path, template: str) -> tuple[Path, Path]:
    """A template folder whose ``template`` runs the payload; and the marker path."""
    marker = tmp_path / "MARKER"
    folder = tmp_path / "evil-templates"
    folder.mkdir(exist_ok=True)
    (folder / template).write_text(payload(marker))
    return folder, marker


@pytest.mark.parametrize("template", ["report.html.j2", "section_model.html.j2"])
def test_report_never_reads_a_template_folder_from_saved_results(
        tmp_path: Path, template: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder, marker = hostile_folder(tmp_path, template)
    saved = tmp_path / "received"
    make_result(["a", "b"], report={"template_dir": str(folder)}).save(saved)
    make_result(["a", "b"], report={"template_dir": "evil-templates"}).save(tmp_path / "rel")
    monkeypatch.chdir(tmp_path)  # where a relative template_dir would have been resolved
    for results in (saved, tmp_path / "rel"):
        assert main(["report", str(results), "--formats", "html"]) == 0
        page = (results / "report.html").read_text()
        assert 'id="sec-model"' in page  # the built-in section, not the hostile one
    assert not marker.exists()
    assert "Traceback" not in capsys.readouterr().err


def test_hostile_page_template_on_the_command_line_is_an_error_not_code(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, marker = hostile_folder(tmp_path, "report.html.j2")
    saved = tmp_path / "run"
    make_result(["a", "b"]).save(saved)
    assert main(["report", str(saved), "--formats", "html", "--template-dir", str(folder)]) == 4
    err = capsys.readouterr().err
    assert "report.html.j2 failed" in err
    assert "SecurityError" in err
    assert "Traceback" not in err
    assert not marker.exists()


def test_hostile_section_template_is_shown_as_a_failed_section(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    folder, marker = hostile_folder(tmp_path, "section_model.html.j2")
    saved = tmp_path / "run"
    make_result(["a", "b"]).save(saved)
    # a failed section is written with its error and fails the command (exit 3)
    assert main(["report", str(saved), "--formats", "html", "--template-dir", str(folder)]) == 3
    page = (saved / "report.html").read_text()
    model = page[page.index('id="sec-model"'):page.index('id="sec-data"')]
    assert "SecurityError" in model
    assert "xaudit: report section 'model'" in capsys.readouterr().err
    assert any("failed to render" in r.message and "SecurityError" in r.message
               for r in caplog.records)
    assert not marker.exists()


def test_suite_template_dir_resolves_against_the_suite_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's own ``report-templates`` is used; a folder of the same name in the working
    directory (hostile here) is not."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    _, marker = hostile_folder(elsewhere, "section_model.html.j2")
    (elsewhere / "evil-templates").rename(elsewhere / "report-templates")
    suite_dir = tmp_path / "suite"
    (suite_dir / "report-templates").mkdir(parents=True)
    (suite_dir / "report-templates" / "section_model.html.j2").write_text(
        '{% extends "builtin:section_model.html.j2" %}{% block body %}'
        '<p class="house">House template.</p>{{ super() }}{% endblock %}')
    (suite_dir / "models.py").write_text(
        "from sklearn.linear_model import LinearRegression\n\n"
        "def linear(data):\n    return LinearRegression().fit(data.X_train, data.y_train)\n")
    (suite_dir / "suite.yaml").write_text(json.dumps({
        "name": "templates", "model": {"factory": "models:linear"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 3}, "background": {"n": 5}},
        "explainers": [{"id": "abl", "method": "ablation"}],
        "report": {"formats": ["json", "html"], "template_dir": "report-templates"}}))
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "out"
    assert main(["run", "-q", str(suite_dir / "suite.yaml"), "--out", str(out)]) == 5
    assert '<p class="house">House template.</p>' in (out / "report.html").read_text()
    assert not marker.exists()


def test_a_template_cannot_leave_its_folder_through_a_symlink(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    folder = tmp_path / "templates"
    folder.mkdir()
    os.symlink(secret, folder / "leak.html.j2")
    (folder / "page.html.j2").write_text('{% include "leak.html.j2" %}')
    env = build_environment(folder, [])
    with pytest.raises(TemplateNotFound, match=r"leak\.html\.j2"):
        env.get_template("page.html.j2").render()
    with pytest.raises(TemplateNotFound, match="not a file inside"):
        ConfinedLoader(str(folder)).get_source(env, "leak.html.j2")


@pytest.mark.parametrize("expression", [
    "{{ a.tofile(path) }}",                      # a method of a NumPy array
    "{{ f.write_text('x') }}",                   # a method of a Path
    "{{ a.__class__.__mro__ }}",                 # an underscore attribute
    "{{ ''.format.__globals__ }}",
    "{{ '{0.__class__}'.format(a) }}",            # through the sandbox's safe formatter
])
def test_the_sandbox_refuses_calls_on_anything_but_plain_data(tmp_path: Path,
                                                              expression: str) -> None:
    env = build_environment(None, [])
    target = tmp_path / "written"
    with pytest.raises(Exception, match=r"unsafe|not safely callable|SecurityError|undefined"):
        env.from_string(expression).render(a=np.zeros(3), path=str(target), f=target)
    assert not target.exists()


def test_templates_may_call_methods_of_plain_data() -> None:
    env = build_environment(None, [])
    assert env.from_string("{{ d.get('k') }}{% do l.append(1) %}{{ l|length }}"
                           "{{ '-{}'.format(2) }}{{ '{x}'.format_map(d2) }}").render(
        d={"k": "v"}, l=[], d2={"x": "!"}) == "v1-2!"


def _saved(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    make_result(["a", "b"]).save(folder)
    return folder


def _edit(key: str, value: Any) -> Any:
    def apply(folder: Path) -> None:
        document = json.loads((folder / "results.json").read_text())
        node = document
        *parents, last = key.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        (folder / "results.json").write_text(json.dumps(document))
    return apply


def _write(name: str, content: bytes) -> Any:
    def apply(folder: Path) -> None:
        (folder / name).write_bytes(content)
    return apply


def _nested(folder: Path) -> None:
    document = json.loads((folder / "results.json").read_text())
    document["provenance"]["deep"] = json.loads("[" * 500 + "]" * 500)
    (folder / "results.json").write_text(json.dumps(document))


def _object_arrays(folder: Path) -> None:
    with zipfile.ZipFile(folder / "arrays.npz", "a") as archive, archive.open(
            "explanations/abl/evil.npy", "w") as handle:
        np.lib.format.write_array(handle, np.array([{"a": 1}], dtype=object),
                                  allow_pickle=True)


def _nan_values(folder: Path) -> None:
    with np.load(folder / "arrays.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["explanations/abl/values"] = np.full_like(arrays["explanations/abl/values"], np.nan)
    np.savez(folder / "arrays.npz", **arrays)


BROKEN = {
    "no_arrays": (lambda folder: (folder / "arrays.npz").unlink(), "holds no arrays.npz"),
    "results_is_a_list": (_write("results.json", b"[]"), "holds a JSON list"),
    "results_not_json": (_write("results.json", b"\x00\x01 not json"), "is not valid JSON"),
    "unknown_schema_version": (_edit("schema_version", 99), "schema version 99"),
    "value_not_a_number": (_edit("checks.0.value", "abc"), "checks.0.value"),
    "threshold_a_bool": (_edit("checks.0.threshold", True), "checks.0.threshold"),
    "error_not_a_record": (_edit("checks.0.error", "boom"), "checks.0.error"),
    "nonfinite_marker_not_a_number": (_edit("checks.0.value", {"$float": "abc"}),
                                      "checks.0.value"),
    "timing_not_a_number": (_edit("provenance.timings.total_s", "slow"), "total_s"),
    "bad_date": (_edit("provenance.finished_at", "yesterday"), "finished_at"),
    "cache_not_a_record": (_edit("provenance.cache", "elsewhere"), "provenance.cache"),
    "cache_hit_not_a_bool": (_edit("provenance.cache", {"folder": "c", "explainers": {
        "abl": {"hit": "yes", "key": "k"}}}), "provenance.cache.explainers.abl.hit"),
    "baseline_share_not_a_number": (_edit("provenance.baseline", {"attribution_shares": {
        "abl": {"ablation": {"bmi": "most"}}}}), "attribution_shares"),
    "feature_names_not_text": (_edit("explanations.abl.feature_names", [1, 2]), "feature_names"),
    "explainers_not_a_mapping": (_edit("suite.explainers", ["x"]), "suite.explainers.0"),
    "unpaired_surrogate": (_write("results.json", b'{"schema_version": 2, "suite_name": '
                                  b'"\\ud800"}'), "unpaired surrogate"),
    "deeply_nested": (_nested, "nested deeper than"),
    "arrays_not_a_zip": (_write("arrays.npz", b"not a zip"), "not a zip file"),
    "object_arrays": (_object_arrays, "holds Python objects"),
    "values_missing": (lambda folder: np.savez(folder / "arrays.npz"),
                       "explanation 'abl' cannot be rebuilt"),
    "values_not_finite": (_nan_values, "not finite"),
    "hyperparameter_not_a_record": (_edit("model.hyperparameters", {"parameters": ["x"]}),
                                    "model.hyperparameters.parameters.0"),
    "representativeness_p_value_text": (_edit("data.representativeness", {"features": [{
        "feature": "a", "kind": "numeric", "pools": {}, "comparisons": [{
            "first": "train", "second": "test", "test": "ks", "p_value": "low"}]}]}),
        "data.representativeness.features.0.comparisons.0.p_value"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_malformed_results_folder_is_invalid_input(case: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    breaks, fragment = BROKEN[case]
    folder = _saved(tmp_path)
    breaks(folder)
    assert main(["report", str(folder), "--formats", "md,junit"]) == 4
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("role", ["baseline", "candidate"])
def test_a_malformed_baseline_or_candidate_is_invalid_input(
        case: str, role: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``xaudit diff`` reads both folders through the reader ``xaudit report`` uses."""
    breaks, fragment = BROKEN[case]
    folders = {"baseline": tmp_path / "baseline", "candidate": tmp_path / "candidate"}
    for folder in folders.values():
        make_result(["a", "b"]).save(folder)
    breaks(folders[role])
    out = tmp_path / "comparison"
    code = main(["diff", str(folders["baseline"]), str(folders["candidate"]), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 4
    assert f"{role} {folders[role]}" in err
    assert fragment in err
    assert "Traceback" not in err
    assert not out.exists()


def test_fields_this_xaudit_does_not_read_are_ignored(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A record written by a later release (or by hand) may carry more fields, ``values``
    included: they are passed over, never handed to the result classes."""
    folder = tmp_path / "run"
    make_result(["a", "b"], crashed=True).save(folder)
    document = json.loads((folder / "results.json").read_text())
    document["checks"][0].update(values=[1e9], note="later release")
    document["explainer_errors"]["boom"]["extra"] = "later release"
    (folder / "results.json").write_text(json.dumps(document))
    assert main(["report", str(folder), "--formats", "md,junit"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    summary = (folder / "summary.md").read_text()
    assert "divided by zero" in summary
    assert "later release" not in summary
