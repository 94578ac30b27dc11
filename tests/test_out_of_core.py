"""Attributions stored out of core (issue 19, item 3): Zarr sinks, the loader, the streaming
summaries the reports use, and received stores that must be refused.

Oracles: numpy reductions over the whole array for the streaming summaries, an independent
``zarr.open_array`` read for what the sink wrote, and the in-memory arrays themselves for every
round trip. A run with ``report.out_of_core_mb`` set low writes ``arrays.zarr.zip``, points to
it from ``results.json``, lists it in the manifest, and renders its reports; tampered pointers
and stores exit 4 as any malformed received folder; a run that stays in memory never imports
zarr (checked in a fresh interpreter).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from folder_support import Workspace, gate, status_of

from xaudit import streaming
from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.feature_shares import feature_shares
from xaudit.manifest import read_manifest
from xaudit.result_store import ZARR_FILE, MemorySink, ZarrSink, array_path
from xaudit.results import ARRAYS_FILE, RESULTS_FILE, AuditResult

pytest_plugins = ["folder_support"]  # its ``ws`` fixture: a workspace of models and plugins

RNG = np.random.default_rng(20261203)
ROWS, FEATURES, OUTPUTS = 403, 6, 3


@pytest.fixture
def values() -> np.ndarray:
    return RNG.normal(size=(ROWS, FEATURES, OUTPUTS)) * RNG.uniform(0.1, 5.0, size=FEATURES)[
        :, None]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 7 rows, so every summary merges many blocks and a short last one."""
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 7 * FEATURES * OUTPUTS * 8)


# --- streaming summaries against numpy on the whole array -------------------------------------


@pytest.mark.usefixtures("small_blocks")
def test_streaming_summaries_equal_numpy_on_the_whole_array(values: np.ndarray) -> None:
    assert len(list(streaming.row_blocks(values))) == -(-ROWS // 7)
    for slot in range(OUTPUTS):
        absolute = np.abs(values[..., slot])
        mean, se = streaming.abs_mean_se(values, slot)
        np.testing.assert_allclose(mean, absolute.mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(se, absolute.std(axis=0, ddof=1) / np.sqrt(ROWS), rtol=1e-11)
        np.testing.assert_allclose(streaming.signed_mean(values, slot),
                                   values[..., slot].mean(axis=0), rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(streaming.abs_max(values, slot), absolute.max(axis=0))
    np.testing.assert_allclose(streaming.abs_mean_over_outputs(values),
                               np.abs(values).mean(axis=0).sum(axis=-1), rtol=1e-13)
    np.testing.assert_allclose(streaming.row_totals(values), values.sum(axis=1), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.usefixtures("small_blocks")
def test_subgroup_means_equal_numpy_per_group(values: np.ndarray) -> None:
    groups = RNG.integers(0, 4, size=ROWS)
    groups[groups == 2] = 1  # group 2 has no rows
    found = streaming.group_abs_means(values, 1, groups, 4)
    for g in range(4):
        rows = groups == g
        expected = np.abs(values[rows, :, 1]).mean(axis=0) if rows.any() else np.zeros(FEATURES)
        np.testing.assert_allclose(found[g], expected, rtol=1e-13)


@pytest.mark.usefixtures("small_blocks")
def test_bootstrap_means_equal_numpy_on_the_same_resamples(values: np.ndarray) -> None:
    found = streaming.bootstrap_abs_means(values, 2, 30, np.random.default_rng(8))
    draws = np.random.default_rng(8).integers(0, ROWS, size=(30, ROWS))
    np.testing.assert_allclose(found, np.abs(values[..., 2])[draws].mean(axis=1), rtol=1e-12)


def test_one_row_has_zero_standard_error(values: np.ndarray) -> None:
    mean, se = streaming.abs_mean_se(values[:1], 0)
    np.testing.assert_array_equal(mean, np.abs(values[0, :, 0]))
    np.testing.assert_array_equal(se, np.zeros(FEATURES))


def test_beeswarm_sample_is_all_rows_up_to_the_limit_then_a_fixed_sample() -> None:
    np.testing.assert_array_equal(streaming.sample_rows(50, 50), np.arange(50))
    drawn = streaming.sample_rows(100_000, 1000)
    assert drawn.size == np.unique(drawn).size == 1000
    assert np.all(np.diff(drawn) > 0)
    assert 0 <= drawn[0] < drawn[-1] < 100_000
    np.testing.assert_array_equal(drawn, streaming.sample_rows(100_000, 1000))


def test_summaries_of_a_memory_map_equal_those_of_the_array(values: np.ndarray,
                                                            tmp_path: Path) -> None:
    mapped = np.memmap(tmp_path / "v.bin", dtype=np.float64, mode="w+", shape=values.shape)
    mapped[:] = values
    for a, b in zip(streaming.abs_mean_se(mapped, 2), streaming.abs_mean_se(values, 2),
                    strict=True):
        np.testing.assert_array_equal(a, b)  # same blocks: bit for bit


# --- sinks ---------------------------------------------------------------------------------------


def _pieces(values: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Row chunks of uneven sizes, handed over out of order."""
    edges = [0, 5, 64, 65, 200, 333, ROWS]
    pieces = [(a, values[a:b]) for a, b in itertools.pairwise(edges)]
    return pieces[::2] + pieces[1::2]


def test_memory_sink_assembles_chunks_in_any_order(values: np.ndarray) -> None:
    sink = MemorySink()
    sink.open_array("e", "values", values.shape)
    for start, piece in _pieces(values):
        sink.write_chunk("e", "values", start, piece)
    sink.close()
    np.testing.assert_array_equal(sink.arrays["e", "values"], values)


def test_zarr_sink_writes_each_chunk_once_in_any_order(values: np.ndarray, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xaudit.result_store.CHUNK_BYTES", 50 * FEATURES * OUTPUTS * 8)
    path = tmp_path / ZARR_FILE
    sink = ZarrSink(path)
    sink.open_array("e", "values", values.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zipfile warns on a member written twice
        for start, piece in _pieces(values):
            sink.write_chunk("e", "values", start, piece)
        sink.close()
    names = zipfile.ZipFile(path).namelist()
    assert len(names) == len(set(names))
    read = zarr.open_array(zarr.storage.ZipStore(path, mode="r"), path="explanations/e/values",
                           mode="r")
    assert read.chunks == (50, FEATURES, OUTPUTS)
    np.testing.assert_array_equal(read[:], values)


@pytest.mark.parametrize("sink_kind", ["memory", "zarr"])
def test_sinks_refuse_overlaps_and_gaps(sink_kind: str, values: np.ndarray,
                                        tmp_path: Path) -> None:
    sink = MemorySink() if sink_kind == "memory" else ZarrSink(tmp_path / ZARR_FILE)
    sink.open_array("e", "values", values.shape)
    sink.write_chunk("e", "values", 0, values[:10])
    with pytest.raises(ValueError, match="rows 5:15 written twice"):
        sink.write_chunk("e", "values", 5, values[5:15])
    with pytest.raises(ValueError, match="does not fit"):
        sink.write_chunk("e", "values", ROWS - 2, values[:10])
    with pytest.raises(ValueError, match=f"{ROWS - 10} row\\(s\\) never written, first row 10"):
        sink.close()


# --- round trip through a results folder ------------------------------------------------------


def _result(values: np.ndarray, bound: float | None, std_errors: bool = True) -> AuditResult:
    n, d, k = values.shape
    explanation = Explanation(
        method="test.linear", values=values, base_values=RNG.normal(size=(n, k)),
        feature_names=tuple(f"f{i}" for i in range(d)), output_names=("a", "b", "c"),
        target_indices=np.tile(np.arange(k), (n, 1)), inputs=RNG.normal(size=(n, d)),
        std_errors=np.abs(values) * 0.01 if std_errors else None,
        extras={"delta": RNG.normal(size=n)})
    report: dict[str, Any] = {} if bound is None else {"out_of_core_mb": bound}
    return AuditResult(suite_name="ooc", suite={"name": "ooc", "report": report},
                       model={"name": "m"}, data={"source": "memory"},
                       explanations={"lin": explanation})


def test_arrays_over_the_bound_round_trip_through_zarr(values: np.ndarray,
                                                       tmp_path: Path) -> None:
    result = _result(values, bound=values.nbytes / (1 << 20) * 0.99)
    result.save(tmp_path)
    assert ZARR_FILE in os.listdir(tmp_path)
    record = json.loads((tmp_path / RESULTS_FILE).read_text())["explanations"]["lin"]
    assert record["stored"]["values"] == {"store": ZARR_FILE, "array": "explanations/lin/values",
                                          "shape": list(values.shape), "dtype": "float64"}
    with np.load(tmp_path / ARRAYS_FILE) as npz:
        assert "explanations/lin/values" not in npz.files
        assert "explanations/lin/inputs" in npz.files
    loaded = AuditResult.load(tmp_path).explanations["lin"]
    original = result.explanations["lin"]
    for name in ("values", "std_errors", "base_values", "inputs", "target_indices"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
    np.testing.assert_array_equal(loaded.extras["delta"], original.extras["delta"])
    assert not loaded.values.flags.writeable
    assert feature_shares(loaded) == feature_shares(original)


def test_arrays_at_or_under_the_bound_stay_in_arrays_npz(values: np.ndarray,
                                                         tmp_path: Path) -> None:
    _result(values, bound=values.nbytes / (1 << 20)).save(tmp_path)
    assert ZARR_FILE not in os.listdir(tmp_path)
    assert "stored" not in json.loads((tmp_path / RESULTS_FILE).read_text())["explanations"][
        "lin"]


# --- a run with the bound set low -------------------------------------------------------------


def _suite(ws: Workspace, name: str, bound: float | None, **extra: Any) -> Path:
    report: dict[str, Any] = {"formats": ["json", "html", "md"]}
    if bound is not None:
        report["out_of_core_mb"] = bound
    return ws.suite(name, factory="linear", checks=[gate()], report=report,
                    documentation={"segments": ["sex"]},
                    explainers=[{"id": "abl", "method": "ablation"}], **extra)


@pytest.mark.parametrize("execution", [None, {"chunk_rows": 4}],
                         ids=["one-call", "chunks-joined-on-disk"])
def test_a_run_over_the_bound_writes_zarr_and_its_reports_render(
        ws: Workspace, execution: dict[str, Any] | None) -> None:
    in_memory, out_of_core = ws.root / "in-memory", ws.root / "out-of-core"
    chunked = {} if execution is None else {"execution": execution}
    assert status_of(["run", str(_suite(ws, "mem", None)), "--out", str(in_memory)]) == 0
    assert status_of(["run", str(_suite(ws, "ooc", 1e-6, **chunked)),
                      "--out", str(out_of_core)]) == 0
    assert not (in_memory / ZARR_FILE).exists()
    assert ZARR_FILE in read_manifest(out_of_core)["files"]
    assert status_of(["verify", str(out_of_core)]) == 0
    pointer = json.loads((out_of_core / RESULTS_FILE).read_text())["explanations"]["abl"][
        "stored"]["values"]
    assert pointer["array"] == array_path("abl", "values")
    a = AuditResult.load(in_memory).explanations["abl"]
    b = AuditResult.load(out_of_core).explanations["abl"]
    np.testing.assert_array_equal(a.values, b.values)
    html = (out_of_core / "report.html").read_text()
    assert "Global explanations" in html
    assert "<caption>Performance and attributions by sex</caption>" in html  # per-group means
    summary = (out_of_core / "summary.md").read_text()
    top = max(feature_shares(b).items(), key=lambda item: item[1])[0]  # type: ignore[union-attr]
    assert top in summary
    assert status_of(["report", str(out_of_core), "--formats", "html,md"]) == 0


def test_a_bound_without_zarr_is_refused_naming_the_field(ws: Workspace,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    monkeypatch.setitem(sys.modules, "zarr", None)  # find_spec raises: not installed
    monkeypatch.setattr("xaudit.extras._installed", lambda name: name != "zarr")
    assert status_of(["run", str(_suite(ws, "nozarr", 1.0)), "--out",
                      str(ws.root / "o")]) == 4
    err = capsys.readouterr().err
    assert "report.out_of_core_mb" in err
    assert "xaudit[dask]" in err


# --- received folders: tampered pointers and stores -------------------------------------------


@pytest.fixture
def saved(values: np.ndarray, tmp_path: Path) -> Path:
    folder = tmp_path / "saved"
    _result(values, bound=1e-6, std_errors=False).save(folder)
    return folder


def _edit_pointer(folder: Path, **changes: Any) -> None:
    path = folder / RESULTS_FILE
    document = json.loads(path.read_text())
    document["explanations"]["lin"]["stored"]["values"].update(changes)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(("changes", "message"), [
    ({"store": "../arrays.zarr.zip"}, "stored.values.store"),
    ({"store": "/tmp/arrays.zarr.zip"}, "stored.values.store"),
    ({"array": "explanations/lin/inputs"}, "must be 'explanations/lin/values'"),
    ({"dtype": "object"}, "stored.values.dtype"),
    ({"shape": [ROWS, FEATURES]}, "shape is"),
])
def test_a_tampered_pointer_is_refused(saved: Path, changes: dict[str, Any],
                                       message: str) -> None:
    _edit_pointer(saved, **changes)
    with pytest.raises(InputError, match=message):
        AuditResult.load(saved)
    assert status_of(["report", str(saved), "--formats", "md",
                      "--out", str(saved.parent / "re")]) == 4


def test_a_store_replaced_by_a_symbolic_link_is_not_followed(saved: Path) -> None:
    elsewhere = saved.parent / "elsewhere.zip"
    (saved / ZARR_FILE).rename(elsewhere)
    (saved / ZARR_FILE).symlink_to(elsewhere)
    with pytest.raises(InputError, match="symbolic link"):
        AuditResult.load(saved)


def _replace_array(folder: Path, build: Any) -> None:
    """Rewrite the store with ``explanations/lin/values`` made by ``build(group)``."""
    path = folder / ZARR_FILE
    path.unlink()
    store = zarr.storage.ZipStore(path, mode="w")
    build(zarr.open_group(store, mode="w"))
    store.close()


def test_a_store_holding_text_instead_of_numbers_is_refused(saved: Path) -> None:
    def text(group: zarr.Group) -> None:
        array = group.create_array("explanations/lin/values", shape=(ROWS, FEATURES, OUTPUTS),
                                   dtype=str, chunks=(ROWS, FEATURES, OUTPUTS))
        array[:] = np.full((ROWS, FEATURES, OUTPUTS), "x")

    _replace_array(saved, text)
    with pytest.raises(InputError, match="data_type is 'string'"):
        AuditResult.load(saved)


def test_a_store_with_a_code_running_codec_is_refused(saved: Path) -> None:
    path = saved / ZARR_FILE
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    key = "explanations/lin/values/zarr.json"
    meta = json.loads(members[key])
    meta["codecs"].append({"name": "numcodecs.pickle", "configuration": {}})
    members[key] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(InputError, match=r"codecs is .*numcodecs\.pickle"):
        AuditResult.load(saved)


def test_a_store_that_is_not_a_zip_is_refused(saved: Path) -> None:
    (saved / ZARR_FILE).write_bytes(b"not a zip archive")
    with pytest.raises(InputError, match="not a Zarr zip store"):
        AuditResult.load(saved)


# --- zarr stays an optional import ------------------------------------------------------------


def test_runs_that_stay_in_memory_never_import_zarr(tmp_path: Path) -> None:
    script = f"""
import sys
import numpy as np
import xaudit
from xaudit.results import AuditResult
from xaudit.explanation import Explanation
import xaudit.reports
xaudit.create_host()
e = Explanation(method="m", values=np.ones((3, 2, 1)), base_values=None,
                feature_names=("a", "b"), output_names=("y",),
                target_indices=np.zeros((3, 1), int), inputs=np.ones((3, 2)))
r = AuditResult(suite_name="s", suite={{"name": "s", "report": {{"out_of_core_mb": 1000}}}},
                model={{}}, data={{}}, explanations={{"e": e}})
r.save({str(tmp_path / "out")!r})
AuditResult.load({str(tmp_path / "out")!r})
print("zarr" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False", done.stderr
