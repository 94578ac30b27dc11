"""Fuzzing suites: whatever a mutated suite holds, xaudit answers with an exit code and a
message, never a traceback, and never a results folder that disagrees with itself.

Mutations (from a fixed seed, so CI sees the same cases every time) of the example suites (the
governance one with a ``baseline:`` too) and of a cheap base suite with an explanation check, a
model check and a drift check: deleted keys, values of the wrong type, huge, negative and non-
finite numbers, hostile and very long strings, unknown keys, duplicated keys, aliases (shared
and exploding). Every mutant goes through ``xaudit validate``; a bounded sample of the base
suite's mutants also goes through ``xaudit run`` in-process. The oracles are the exit-code
contract (0/4 for validate; 0, 1, 3, 4 or 5 for run), an empty-of-tracebacks stderr with a
message for every refusal, and a written folder whose results.json, summary.md and junit.xml
tell the same exit code as the process.
"""

from __future__ import annotations

import copy
import json
import random
import re
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import xaudit.cli
from xaudit.cli import main
from xaudit.host import Host, create_host

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240613
N_VALIDATE = 400
N_RUN = 24
HOSTILE = "x\x00\x1b[2J\u202e<script>{{7*7}}$\\frac{$"
VALUES: list[Any] = [
    True, False, None, 0, -1, -10**12, 10**30, 1e308, -1e-308, float("nan"), float("inf"),
    "", "text", "1e-6", HOSTILE, "y" * 10_000, [], [1, "a", None], {}, {"unknown": 1},
    [[[[[]]]]], [10**30], [-1, 2], "sklearn:iris", "../../etc/passwd", "models:linear",
]

MODELS = '''\
from sklearn.linear_model import LinearRegression


def linear(data):
    return LinearRegression().fit(data.X_train, data.y_train)
'''


def base_suite(models: str) -> dict[str, Any]:
    return {
        "name": "fuzz",
        "seed": 5,
        "model": {"factory": f"{models}:linear", "task": "regression",
                  "output_names": ["progression"]},
        "data": {"source": "sklearn:diabetes", "split": {"test_size": 0.25},
                 "explain": {"rows": None, "n": 4, "from": "test", "method": "random"},
                 "background": {"n": 8, "from": "train"}},
        "explainers": [{"id": "abl", "method": "ablation", "params": {"baseline": "mean"}}],
        "checks": [{"check": "completeness", "explainer": "abl",
                    "gate": {"threshold": 1.0e-6, "warn_threshold": 1.0e-9}},
                   {"check": "performance.r2", "params": {"n_boot": 20, "min_group": 5},
                    "gate": {"threshold": 0.2}},  # a model check (no explainer)
                   {"check": "drift.top_k", "explainer": "abl", "params": {"k": 3},
                    "gate": {"threshold": 1, "relative_to": "baseline"}}],  # skipped: none
        "report": {"formats": ["json", "md", "junit"]},
        "documentation": {"owner": "fuzz", "reason_codes": {"bmi": "high"},
                          "decision": {"output": "progression", "threshold": 150.0}},
    }


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        document = document[key]
    return document


def mutate(document: dict[str, Any], rng: random.Random) -> str:
    """A mutant of ``document`` (one to three mutations), as YAML text."""
    suite = copy.deepcopy(document)
    text_edits = []
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(suite))
        if not paths:
            break
        path = rng.choice(paths)
        parent, key = _parent(suite, path), path[-1]
        kind = rng.choice(["delete", "replace", "replace", "number", "unknown_key",
                           "duplicate", "alias", "bomb"])
        if kind == "delete":
            del parent[key]
        elif kind == "replace":
            parent[key] = copy.deepcopy(rng.choice(VALUES))
        elif kind == "number":
            parent[key] = rng.choice([-1, 0, 2**63, -2**63, 10**100, 1e-300, -0.0, 3.5,
                                      float("-inf")])
        elif kind == "unknown_key":
            target = parent if isinstance(parent, dict) else suite
            target[f"extra_{rng.randrange(100)}"] = 1
        else:
            text_edits.append(kind)
    text = yaml.safe_dump(suite, sort_keys=False, allow_unicode=False, width=10_000)
    for kind in text_edits:
        if kind == "duplicate":
            keyed = [ln for ln in text.splitlines() if re.match(r"^\s*[A-Za-z_]+:", ln)]
            if keyed:
                line = rng.choice(keyed)
                text = text.replace(line, f"{line}\n{line}", 1)
        elif kind == "alias" and "data:\n" in text:
            text = text.replace("data:\n", "data: &shared\n", 1) + "extra_alias: *shared\n"
        elif kind == "bomb":
            laughs = "".join(f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]\n"
                             for i in range(1, 10))
            text += "bomb:\n  l0: &l0 [lol]\n" + laughs
    return text


@pytest.fixture(scope="module")
def host() -> Host:
    return create_host(autoload=False)


@pytest.fixture
def workspace(tmp_path: Path, host: Host, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[Path, str]]:
    models = f"xaudit_fuzz_models_{uuid.uuid4().hex}"
    (tmp_path / f"{models}.py").write_text(MODELS)
    monkeypatch.setattr(xaudit.cli, "create_host", lambda **_: host)
    yield tmp_path, models
    sys.modules.pop(models, None)


def sources(models: str) -> list[tuple[str, dict[str, Any]]]:
    found = [("base", base_suite(models))]
    for name in ("diabetes", "digits"):
        found.append((name, yaml.safe_load((ROOT / "examples" / name / "audit.yaml").read_text())))
    governance = yaml.safe_load((ROOT / "examples" / "governance" / "approved.yaml").read_text())
    governance["baseline"] = {"path": "approved", "feature_changes": "compare"}
    found.append(("governance", governance))  # drift, policy and performance checks, baseline:
    return found


def check_refusal(code: int, err: str, allowed: set[int]) -> None:
    assert code in allowed, (code, err)
    assert "Traceback" not in err, err
    if code == 4:
        assert err.startswith("xaudit: "), err


def test_validate_answers_every_mutant_with_a_code_and_a_message(
        workspace: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    folder, models = workspace
    rng = random.Random(SEED)
    documents = sources(models)
    codes = []
    for i in range(N_VALIDATE):
        name, document = documents[i % len(documents)]
        path = folder / f"{name}-{i}.yaml"  # the first of each source is its unmutated control
        path.write_text(mutate(document, rng) if i >= len(documents) else yaml.safe_dump(document))
        code = main(["validate", str(path)])
        if i < len(documents):
            assert code == 0, capsys.readouterr().err
        captured = capsys.readouterr()
        check_refusal(code, captured.err, {0, 4})
        codes.append(code)
    assert codes.count(4) > N_VALIDATE // 2  # most mutants are invalid ...
    assert codes.count(0) > 10  # ... and some are not, so both paths were exercised


def test_run_answers_mutants_with_consistent_folders(workspace: tuple[Path, str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder, models = workspace
    rng = random.Random(SEED + 1)
    document = base_suite(models)
    seen = set()
    for i in range(N_RUN):
        path = folder / f"run-{i}.yaml"  # the first is the unmutated control
        path.write_text(mutate(document, rng) if i else yaml.safe_dump(document))
        out = folder / f"out-{i}"
        code = main(["run", "-q", str(path), "--out", str(out)])
        captured = capsys.readouterr()
        check_refusal(code, captured.err, {0, 1, 3, 4, 5})
        seen.add(code)
        if code == 4:
            assert not out.exists()
            continue
        saved = json.loads((out / "results.json").read_text())
        assert saved["exit_code"] == code
        if (out / "summary.md").exists():  # unless a mutant changed the formats
            assert f"exit code {code}." in (out / "summary.md").read_text()
        if (out / "junit.xml").exists():
            ET.parse(out / "junit.xml")
        assert f"(exit {code})" in captured.out
    assert {0, 4} <= seen
