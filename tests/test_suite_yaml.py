"""Suite YAML is read within bounds: duplicate keys, alias bombs, deep nesting, huge files,
recursive aliases and coerced types are refused with exit 4, a message and no traceback.

Each hostile file is refused by ``xaudit validate`` and ``xaudit run`` within a second (timed
with the process clock, generous against the milliseconds it takes), and ``run`` writes
nothing. The oracle for the numbers is YAML itself: ``1e-6`` is a float in YAML 1.2.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from xaudit.cli import main
from xaudit.errors import SuiteError
from xaudit.safe_yaml import MAX_BYTES, load_yaml

BASE = """\
name: yaml-bounds
model:
  factory: models:linear
  options: {}
data: {source: "sklearn:diabetes"}
explainers: [{id: abl, method: ablation}]
checks:
  - check: completeness
    explainer: abl
    gate: {threshold: 1.0e-6}
report: {formats: [json]}
"""

BILLION_LAUGHS = """\
name: bomb
model:
  factory: models:linear
  options:
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
data: {source: "sklearn:diabetes"}
explainers: [{id: abl, method: ablation}]
"""

HOSTILE = {
    "alias_bomb": (BILLION_LAUGHS, "once aliases are expanded"),
    "flow_nesting_3000": ("name: x\nmodel:\n  options:\n    deep: " + "[" * 3000 + "]" * 3000
                          + "\n", "nesting"),
    # 3,000 block levels take 4.5 MB of indentation (refused for its size); 1,000 fit in 1 MiB
    "block_nesting_1000": ("name: x\nmodel:\n" + "".join(" " * (i + 1) + f"k{i}:\n"
                                                          for i in range(1000)),
                           "nesting deeper than 64 levels"),
    "oversized": (BASE + "description: '" + "x" * (MAX_BYTES + 10) + "'\n",
                  "larger than 1,048,576 bytes"),
    "recursive_alias": (BASE + "documentation: &doc {out_of_scope: [*doc]}\n",
                        "lies inside its own anchor"),
    "duplicate_key": (BASE.replace("{threshold: 1.0e-6}", "{threshold: -1.0, threshold: 1e9}"),
                      "checks[0].gate.threshold: key 'threshold' is given twice"),
    "duplicate_top_level_key": (BASE + "name: again\n", "name: key 'name' is given twice "
                                "(lines 1 and 12)"),
    "python_tag": (BASE + "description: !!python/object/apply:os.system ['true']\n",
                   "could not determine a constructor"),
    "not_utf8": (BASE.encode() + b"description: \xff\xfe\n", "not UTF-8 text"),
    "huge_integer": (BASE + "seed: " + "9" * 5000 + "\n", "a value cannot be read"),
}


@pytest.fixture
def models(tmp_path: Path) -> Path:
    (tmp_path / "models.py").write_text(
        "from sklearn.linear_model import LinearRegression\n\n"
        "def linear(data):\n    return LinearRegression().fit(data.X_train, data.y_train)\n")
    return tmp_path


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_hostile_yaml_is_refused_within_a_second(case: str, command: str, models: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text, fragment = HOSTILE[case]
    path = models / "suite.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = models / "out"
    argv = [command, str(path)] + (["--out", str(out)] if command == "run" else [])
    started = time.process_time()
    code = main(argv)
    elapsed = time.process_time() - started
    err = capsys.readouterr().err
    assert code == 4, err
    assert fragment in err
    assert "Traceback" not in err
    assert elapsed < 1.0
    assert not out.exists()


def test_the_billion_laughs_is_the_classic_size() -> None:
    """The issue's attack: under a kilobyte of YAML that would expand to 9**9 strings."""
    assert len(BILLION_LAUGHS.encode()) < 1024


def test_legitimate_aliases_and_merge_keys_still_work() -> None:
    data = load_yaml(b"base: &b {n_samples: 64, max_batch: 8}\n"
                     b"one: *b\n"
                     b"two: {<<: *b, n_samples: 128}\n", "s.yaml")
    assert data == {"base": {"n_samples": 64, "max_batch": 8},
                    "one": {"n_samples": 64, "max_batch": 8},
                    "two": {"n_samples": 128, "max_batch": 8}}


@pytest.mark.parametrize("text", ["1e-6", "1E-6", "-2.5e+3", "1.0e6", ".5e1", "3e2"])
def test_exponent_numbers_are_floats_as_in_yaml_1_2(text: str) -> None:
    assert load_yaml(f"x: {text}".encode(), "s.yaml") == {"x": float(text)}
    assert load_yaml(f"x: '{text}'".encode(), "s.yaml") == {"x": text}
    assert yaml.safe_load(f"x: {text}")["x"] in (float(text), text)  # PyYAML alone: either


def test_every_duplicate_key_is_reported_with_its_path() -> None:
    text = b"a: 1\nb:\n  - {c: 1, c: 2}\n  - d: {e: 1}\n    d: 2\na: 3\n"
    with pytest.raises(SuiteError) as caught:
        load_yaml(text, "s.yaml")
    assert [p.path for p in caught.value.problems] == ["a", "b[0].c", "b[1].d"]
    assert "lines 1 and 6" in str(caught.value)


@pytest.mark.parametrize(("edit", "path", "fragment"), [
    (("seed: 0", "seed: true"), "seed", "valid integer"),
    (("{threshold: 1.0e-6}", '{threshold: "1e-6"}'), "checks[0].gate.threshold", "valid number"),
    (("{threshold: 1.0e-6}", "{threshold: .nan}"), "checks[0].gate.threshold", "finite number"),
    (("{id: abl, method: ablation}", "{id: abl, method: ablation, params: {max_batch: '8'}}"),
     "explainers[0].params.max_batch", "valid integer"),
    (("options: {}", "options: {1: x}"), "model.options.1", "is a int, not text"),
    # in-memory objects: only in a suite built in Python, never in a file
    (('data: {source: "sklearn:diabetes"}', 'data: {source: "sklearn:diabetes", X: [[1, 2]]}'),
     "data.X", "only in a suite built in Python"),
    (("options: {}", "options: {}\n  object: model.pkl"), "model.object",
     "only in a suite built in Python"),
])
def test_types_are_strict(edit: tuple[str, str], path: str, fragment: str, models: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    suite = models / "suite.yaml"
    suite.write_text((BASE + "seed: 0\n").replace(*edit))
    assert main(["validate", str(suite)]) == 4
    err = capsys.readouterr().err
    assert any(line.strip().startswith(f"{path}: ") and fragment in line
               for line in err.splitlines()), err
    suite.write_text(BASE + "seed: 0\n")
    assert main(["validate", str(suite)]) == 0  # the control: unedited, it is valid


def test_a_folder_is_not_a_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path)]) == 4
    assert "is a folder, not a suite file" in capsys.readouterr().err
