"""The explanation cache: a cached result is a fresh run's, every key component invalidates,
corrupted or foreign entries are ignored with a warning, concurrent writers do not corrupt it.

The oracle for "identical numbers" is a fresh run of the same suite without any cache;
arrays are compared element for element (``np.array_equal``), not approximately.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

import xaudit
import xaudit.cache as cache_module
from xaudit.cache import CacheKey, CacheWarning, ExplanationCache, explanation_key
from xaudit.cli import main
from xaudit.explanation import Explanation
from xaudit.host import Host
from xaudit.model import Model
from xaudit.registry import PluginInfo
from xaudit.results import AuditResult
from xaudit.rowindex import RowIndex

MODELS = '''\
from sklearn.tree import DecisionTreeRegressor


def tree(data):
    return DecisionTreeRegressor(max_depth=3, random_state=0).fit(data.X_train, data.y_train)
'''
EXPLAINERS = [
    {"id": "abl", "method": "ablation"},
    {"id": "kernel", "method": "shap.kernel", "params": {"n_samples": 64}},
    {"id": "lime", "method": "lime.tabular", "params": {"n_samples": 200}},
    {"id": "perm", "method": "permutation_importance", "params": {"n_repeats": 2}},
]


def write_suite(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cache_models.py").write_text(MODELS)
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "name": "cached", "seed": 4,
        "model": {"factory": "cache_models:tree"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 5}, "background": {"n": 10}},
        "explainers": EXPLAINERS,
        "checks": [{"check": "completeness", "explainer": "kernel", "gate": {"threshold": 1.0}},
                   {"check": "stability", "explainer": "lime", "params": {"repeats": 1}}],
        "report": {"formats": ["json", "md"]},
    }))
    return path


def assert_same_numbers(cached: Explanation, fresh: Explanation) -> None:
    for name in ("values", "base_values", "std_errors", "target_indices", "inputs"):
        a, b = getattr(cached, name), getattr(fresh, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype, name
            assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    assert cached.extras.keys() == fresh.extras.keys()
    for key in cached.extras:
        assert np.array_equal(cached.extras[key], fresh.extras[key], equal_nan=True), key
    for name in ("method", "feature_names", "output_names", "params", "seed", "metadata",
                 "additive", "handoff", "row_index"):
        assert getattr(cached, name) == getattr(fresh, name), name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, AuditResult]:
    """The suite run fresh (no cache), then twice through one cache."""
    root = tmp_path_factory.mktemp("cache")
    suite = write_suite(root / "suite")
    folder = root / "cache"
    try:
        return {"fresh": xaudit.run_suite(suite),
                "first": xaudit.run_suite(suite, cache=folder),
                "second": xaudit.run_suite(suite, cache=folder, out_dir=root / "out")}
    finally:
        sys.modules.pop("cache_models", None)


def test_a_cached_result_equals_a_fresh_run(runs: dict[str, AuditResult]) -> None:
    fresh, first, second = runs["fresh"], runs["first"], runs["second"]
    assert set(second.explanations) == {spec["id"] for spec in EXPLAINERS}
    for key, explanation in second.explanations.items():
        assert_same_numbers(explanation, fresh.explanations[key])
        assert explanation.wall_time_s == first.explanations[key].wall_time_s  # as stored
    for cached, new in zip(second.checks, fresh.checks, strict=True):
        assert cached.value == new.value  # checks of cached explanations measure the same
        assert np.array_equal(cached.values, new.values, equal_nan=True)  # type: ignore[arg-type]


def test_the_results_record_which_explanations_came_from_the_cache(
        runs: dict[str, AuditResult]) -> None:
    first = runs["first"].provenance["cache"]["explainers"]
    second = runs["second"].provenance["cache"]["explainers"]
    assert {k: (v["hit"], v["stored"]) for k, v in first.items()} == {
        spec["id"]: (False, True) for spec in EXPLAINERS}
    assert {k: v["hit"] for k, v in second.items()} == {spec["id"]: True for spec in EXPLAINERS}
    assert {k: v["key"] for k, v in first.items()} == {k: v["key"] for k, v in second.items()}
    assert "cache" not in runs["fresh"].provenance
    saved = AuditResult.load(Path(runs["second"].provenance["cache"]["folder"]).parent / "out")
    assert saved.provenance["cache"]["explainers"] == second


def test_method_auto_is_cached_as_the_method_it_chooses(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite")
    document = yaml.safe_load(suite.read_text())
    document["explainers"] = [{"id": "auto", "method": "auto"}]
    document["checks"] = [{"check": "completeness", "explainer": "auto",
                           "gate": {"threshold": 1e-6}}]
    suite.write_text(yaml.safe_dump(document))
    try:
        fresh = xaudit.run_suite(suite)
        first = xaudit.run_suite(suite, cache=tmp_path / "cache")
        second = xaudit.run_suite(suite, cache=tmp_path / "cache")
    finally:
        sys.modules.pop("cache_models", None)
    assert fresh.explanations["auto"].method == "shap.tree"  # a tree: rule 1 of xaudit.auto
    assert [r["hit"] for r in (first.provenance["cache"]["explainers"]["auto"],
                               second.provenance["cache"]["explainers"]["auto"])] == [False, True]
    assert_same_numbers(second.explanations["auto"], fresh.explanations["auto"])
    assert second.checks[0].value == fresh.checks[0].value


# --- the key ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parts() -> dict[str, Any]:
    X, y = load_diabetes(return_X_y=True)
    names = tuple(load_diabetes().feature_names)
    host = xaudit.create_host(autoload=False)
    model = xaudit.adapt(LinearRegression().fit(X[:300], y[:300]), host=host)
    return {"host": host, "model": model, "rows": X[300:305], "background": X[:20],
            "labels": y[300:305], "feature_names": names, "method": "shap.kernel",
            "params": {"n_samples": 64}, "target": None, "seed": 1, "X": X, "y": y}


def key_of(parts: dict[str, Any], **changed: Any) -> CacheKey:
    given = {**parts, **changed}
    return explanation_key(given["host"], given["model"], given["rows"], given["background"],
                           given["labels"], given["feature_names"], given["method"],
                           given["params"], given["target"], given["seed"],
                           row_index=given.get("row_index"), requested=given.get("requested"))


def _other_model(parts: dict[str, Any]) -> Model:
    return xaudit.adapt(LinearRegression().fit(parts["X"][:299], parts["y"][:299]),
                        host=parts["host"])


def _edited(array: np.ndarray) -> np.ndarray:
    edited = array.copy()
    edited[0, 0] += 1e-12
    return edited


CHANGES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "model": lambda p: {"model": _other_model(p)},
    "explained rows": lambda p: {"rows": _edited(p["rows"])},
    "background": lambda p: {"background": _edited(p["background"])},
    "no background": lambda p: {"background": None},
    "feature names": lambda p: {"feature_names": ("x0", *p["feature_names"][1:])},
    "method": lambda p: {"method": "shap.permutation", "params": {}},
    "parameters": lambda p: {"params": {"n_samples": 65}},
    "seed": lambda p: {"seed": 2},
    "targets": lambda p: {"target": "all"},
    "row labels": lambda p: {"row_index": RowIndex.given([f"patient-{i}" for i in range(5)], 5)},
    "chosen by auto": lambda p: {"requested": "auto"},
}


@pytest.mark.parametrize("component", sorted(CHANGES))
def test_each_key_component_invalidates(parts: dict[str, Any], component: str,
                                        tmp_path: Path) -> None:
    changed = CHANGES[component](parts)
    base, other = key_of(parts), key_of(parts, **changed)
    assert other.digest != base.digest
    assert key_of(parts, **changed).digest == other.digest  # the key is deterministic
    cache = ExplanationCache(tmp_path)
    explanation = xaudit.explain(parts["model"], parts["rows"], "ablation",
                                 background=parts["background"], host=parts["host"])
    assert cache.put(base, explanation)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert cache.get(other) is None  # a miss, not a warning
        assert cache.get(base) is not None


@pytest.mark.parametrize("component", ["xaudit version", "plugin version", "plugin source",
                                       "package versions"])
def test_versions_invalidate(parts: dict[str, Any], component: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    base = key_of(parts)
    host: Host = parts["host"]
    if component == "xaudit version":
        monkeypatch.setattr(cache_module, "__version__", "99.0")
    elif component == "plugin version":
        origin = host.explainers.origin("shap.kernel")
        monkeypatch.setitem(host.explainers._origins, "shap.kernel",
                            PluginInfo(origin.name, origin.distribution, "99.0"))
    elif component == "plugin source":
        monkeypatch.setattr(cache_module, "file_sha256", lambda path: "edited")
    else:
        monkeypatch.setattr(cache_module, "package_versions", lambda: {"numpy": "0.0"})
    assert key_of(parts).digest != base.digest


def test_what_does_not_change_the_numbers_keeps_the_key(parts: dict[str, Any]) -> None:
    base = key_of(parts)
    assert key_of(parts, params={"n_samples": 64, "surrogate": "gp"}).digest == base.digest
    assert key_of(parts, labels=parts["labels"] + 1.0).digest == base.digest  # not read


def test_labels_count_for_a_method_that_reads_them(parts: dict[str, Any]) -> None:
    reads = {"method": "permutation_importance", "params": {}}
    assert key_of(parts, **reads).digest != key_of(
        parts, **reads, labels=parts["labels"] + 1.0).digest


# --- corrupted and foreign entries ----------------------------------------------------------


def _rewrite_arrays(folder: Path, edit: Callable[[dict[str, np.ndarray]], None]) -> None:
    with np.load(folder / "arrays.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    edit(arrays)
    with (folder / "arrays.npz").open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


def _reseal(folder: Path) -> None:
    """Recompute both digests, as a writer that is not xaudit would (hashlib + json)."""
    import hashlib

    path = folder / "entry.json"
    entry = json.loads(path.read_text())
    entry["arrays_sha256"] = hashlib.sha256((folder / "arrays.npz").read_bytes()).hexdigest()
    body = {k: v for k, v in entry.items() if k != "entry_sha256"}
    entry["entry_sha256"] = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    path.write_text(json.dumps(entry))


def _pickled(folder: Path) -> None:
    with np.load(folder / "arrays.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["values"] = np.array([object()] * 3, dtype=object)
    with (folder / "arrays.npz").open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    _reseal(folder)


def _json_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        entry = json.loads((folder / "entry.json").read_text())
        edit(entry)
        (folder / "entry.json").write_text(json.dumps(entry))

    return damage


def _foreign(folder: Path) -> None:
    other = folder.parent.parent / "elsewhere"
    shutil.rmtree(folder)
    shutil.copytree(other, folder)


DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "unreadable entry.json": (lambda f: (f / "entry.json").write_text("{"), "unreadable"),
    "edited number in entry.json": (
        _json_edit(lambda e: e["explanation"].update(seed=e["explanation"]["seed"] + 1)),
        "edited after it was written"),
    "tampered arrays": (lambda f: _rewrite_arrays(f, lambda a: a["values"].__iadd__(1.0)),
                        "arrays.npz is missing or changed"),
    "missing arrays": (lambda f: (f / "arrays.npz").unlink(), "arrays.npz is missing"),
    "pickled content": (_pickled, "cannot be read without unpickling"),
    "another format version": (_json_edit(lambda e: e.update(entry_version=0)),
                               "format version 0"),
    "foreign entry": (_foreign, "belongs to another key"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_bad_entry_is_ignored_with_a_warning_and_replaced(
        parts: dict[str, Any], damage: str, tmp_path: Path) -> None:
    cache = ExplanationCache(tmp_path / "cache")
    key = key_of(parts, method="ablation", params={})

    def compute() -> Explanation:
        return xaudit.explain(parts["model"], parts["rows"], "ablation",
                              background=parts["background"], host=parts["host"])

    fresh = compute()
    assert cache.put(key, fresh)
    elsewhere = key_of(parts, method="ablation", params={}, seed=9)
    cache.put(elsewhere, compute())
    shutil.copytree(cache.path(elsewhere), tmp_path / "cache" / "elsewhere")
    apply, message = DAMAGES[damage]
    apply(cache.path(key))
    with pytest.warns(CacheWarning, match=message):
        explanation, record = cache.explain(key, compute)
    assert record["hit"] is False
    assert record["stored"] is True
    assert_same_numbers(explanation, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        replaced = cache.get(key)  # the bad entry was replaced by a good one
    assert replaced is not None
    assert_same_numbers(replaced, fresh)


def test_mixed_type_rows_are_not_cached(parts: dict[str, Any], tmp_path: Path) -> None:
    """Rows of object dtype would come back as text (results.json's form), not as the rows
    the checks re-explain: such an explanation is computed every time."""
    explanation = xaudit.explain(parts["model"], parts["rows"], "ablation",
                                 background=parts["background"], host=parts["host"])
    mixed = dataclasses.replace(explanation, inputs=explanation.inputs.astype(object))
    cache = ExplanationCache(tmp_path)
    assert not cache.put(key_of(parts), mixed)
    assert cache.get(key_of(parts)) is None


def test_concurrent_writers_do_not_corrupt_the_cache(parts: dict[str, Any],
                                                     tmp_path: Path) -> None:
    cache = ExplanationCache(tmp_path)
    explanation = xaudit.explain(parts["model"], parts["rows"], "ablation",
                                 background=parts["background"], host=parts["host"])
    keys = [key_of(parts, method="ablation", params={}, seed=s) for s in range(3)]

    def work(i: int) -> Explanation | None:
        key = keys[i % len(keys)]
        cache.put(key, explanation)
        return cache.get(key)

    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = list(pool.map(work, range(48)))
    assert all(f is not None for f in found)
    for f in found:
        assert f is not None
        assert_same_numbers(f, explanation)
    leftovers = [p.name for p in tmp_path.rglob(".*") if p.name.startswith((".tmp-", ".old-"))]
    assert leftovers == []


# --- the command line -----------------------------------------------------------------------


def test_cache_from_the_environment_and_no_cache(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path / "suite")
    text = suite.read_text().replace("shap.kernel", "ablation")
    suite.write_text(yaml.safe_dump({**yaml.safe_load(text), "explainers": EXPLAINERS[:1],
                                     "checks": []}))
    monkeypatch.setenv("XAUDIT_CACHE", str(tmp_path / "env-cache"))
    assert main(["run", "-q", str(suite), "--out", str(tmp_path / "a")]) == 5
    assert list((tmp_path / "env-cache").glob("*/*/entry.json"))
    assert main(["run", "-q", str(suite), "--out", str(tmp_path / "b"), "--no-cache"]) == 5
    assert "cache" not in AuditResult.load(tmp_path / "b").provenance
    assert main(["run", "-q", str(suite), "--out", str(tmp_path / "c"), "--formats",
                 "md,html"]) == 5
    record = AuditResult.load(tmp_path / "c").provenance["cache"]["explainers"]["abl"]
    assert record["hit"]
    assert "from the cache" in (tmp_path / "c" / "summary.md").read_text()
    page = (tmp_path / "c" / "report.html").read_text()
    appendix = page[page.index("Explanations reused from the cache"):]
    assert f"<td>abl</td><td><code class=\"hash\">{record['key']}</code>" in appendix
    (tmp_path / "not-a-folder").write_text("")
    capsys.readouterr()
    assert main(["run", "-q", str(suite), "--out", str(tmp_path / "d"), "--cache",
                 str(tmp_path / "not-a-folder")]) == 4
    assert "is a file" in capsys.readouterr().err


def test_v_logs_cache_hits_and_q_silences_a_bad_entry_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path / "suite")
    suite.write_text(yaml.safe_dump({**yaml.safe_load(suite.read_text()),
                                     "explainers": EXPLAINERS[:1], "checks": []}))
    cache = tmp_path / "cache"
    try:
        assert main(["run", "-v", str(suite), "--out", str(tmp_path / "a"),
                     "--cache", str(cache)]) == 5
        assert "abl (ablation): cache miss, key " in capsys.readouterr().err
        assert main(["run", str(suite), "-v", "--out", str(tmp_path / "b"),
                     "--cache", str(cache)]) == 5
        key = AuditResult.load(tmp_path / "b").provenance["cache"]["explainers"]["abl"]["key"]
        assert f"abl (ablation): cache hit, key {key}" in capsys.readouterr().err
        (entry,) = cache.glob("*/*/entry.json")
        entry.write_text("{")
        assert main(["run", "-q", str(suite), "--out", str(tmp_path / "c"),
                     "--cache", str(cache)]) == 5
        assert capsys.readouterr().err == ""  # -q: errors only
        entry.write_text("{")
        assert main(["run", str(suite), "--out", str(tmp_path / "d"), "--cache", str(cache)]) == 5
        assert "xaudit: WARNING: ignoring cache entry" in capsys.readouterr().err
    finally:
        logging.getLogger("xaudit").setLevel(logging.NOTSET)
        sys.modules.pop("cache_models", None)
