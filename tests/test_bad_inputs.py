"""Bad input files and broken user code are invalid input: exit 4 and a message saying what is
wrong, never a traceback, and nothing run.

Each file is made broken on purpose (an NPZ holding an object array, a file called ``.npz``
that is not a zip, a binary or empty CSV, a factory module with a syntax error, a model that
raises on the explained rows). Parquet's nullable integers are the exception that must work:
the rows xaudit explains are compared with pandas' own ``to_numpy(dtype=float, na_value=nan)``.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from xaudit.cli import main
from xaudit.results import AuditResult

MODELS = '''\
import numpy as np


def mean_model(data):
    """A callable model: the mean of each row's features (NaN ignored)."""
    return lambda X: np.nanmean(np.asarray(X, dtype=float), axis=1, keepdims=True)


def raises(data):
    def predict(X):
        raise ValueError("this model cannot handle these rows")
    return predict
'''


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    module = f"xaudit_bad_inputs_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text(MODELS)
    yield tmp_path, module
    sys.modules.pop(module, None)


def suite(folder: Path, model: dict[str, Any], source: str, **data: Any) -> Path:
    path = folder / "suite.yaml"
    path.write_text(json.dumps({
        "name": "bad-inputs", "seed": 0, "model": model,
        "data": {"source": source, "split": {"test_size": 0}, "explain": {"n": 3},
                 "background": {"n": 3}, **data},
        "explainers": [{"id": "abl", "method": "ablation"}],
        "report": {"formats": ["json"]}}))
    return path


def run(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    out = path.parent / "out"
    code = main(["run", "-q", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 4:
        assert not out.exists()
    return code, err


def _object_npz(path: Path) -> None:
    np.savez(path, X=np.array([[1, "a"], [2, "b"]], dtype=object))


BAD_FILES = {
    "object_arrays.npz": (_object_npz, "array 'X' holds Python objects (dtype object)"),
    "not_a_zip.npz": (lambda p: p.write_text("X,y\n1,2\n"),
                      "is not an NPZ archive: it is not a zip file"),
    "no_X.npz": (lambda p: np.savez(p, Z=np.zeros((3, 2))), "needs an array named 'X'"),
    "binary.csv": (lambda p: p.write_bytes(bytes(range(256)) * 8), "is binary (it holds NUL"),
    "empty.csv": (lambda p: p.write_bytes(b""), "is empty; a CSV file needs a header row"),
    "header_only.csv": (lambda p: p.write_text("a,b\n"), "has no rows"),
    "latin1.csv": (lambda p: p.write_bytes("a,b\n\xe9,1\n".encode("latin-1")),
                   "cannot be read as csv: UnicodeDecodeError"),
    "not_parquet.parquet": (lambda p: p.write_text("a,b\n1,2\n"),
                            "cannot be read as parquet"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_unreadable_data_files_are_invalid_input(name: str, folder: tuple[Path, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root, module = folder
    write, fragment = BAD_FILES[name]
    write(root / name)
    code, err = run(suite(root, {"factory": f"{module}:mean_model"}, name), capsys)
    assert code == 4
    assert fragment in err


def test_parquet_nullable_integers_with_na_are_read_as_nan(folder: tuple[Path, str],
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    pytest.importorskip("pyarrow")
    root, module = folder
    frame = pd.DataFrame({"a": pd.array([1, None, 3, 4], dtype="Int64"),
                          "b": pd.array([0.5, 1.5, None, 2.5], dtype="Float64"),
                          "c": [1.0, 2.0, 3.0, 4.0]})
    frame.to_parquet(root / "nullable.parquet")
    code, _ = run(suite(root, {"factory": f"{module}:mean_model", "output_names": ["m"]},
                        "nullable.parquet", explain={"n": 4, "method": "first", "from": "all"}),
                  capsys)
    assert code == 5  # ran; no gate
    inputs = AuditResult.load(root / "out").explanations["abl"].inputs
    np.testing.assert_array_equal(inputs, frame.to_numpy(dtype=float, na_value=np.nan))


def test_a_csv_symlink_is_read_by_its_name(folder: tuple[Path, str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root, module = folder
    (root / "table").write_text("a,b\n1,2\n3,4\n5,6\n")
    os.symlink(root / "table", root / "data.csv")
    code, _ = run(suite(root, {"factory": f"{module}:mean_model"}, "data.csv"), capsys)
    assert code == 5
    assert AuditResult.load(root / "out").data["feature_names"] == ["a", "b"]


@pytest.mark.parametrize(("source", "expected"), [
    ("import numpy\n\ndef f(data:\n    return 1\n", "{module}.py, line 3"),
    ("raise RuntimeError('no GPU here')\n",
     "importing module {module!r} raised RuntimeError: no GPU here"),
], ids=["syntax_error_names_file_and_line", "raise_on_import"])
def test_a_factory_module_that_does_not_import_is_invalid_input(
        source: str, expected: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    module = f"xaudit_factory_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text(source)
    try:
        code, err = run(suite(tmp_path, {"factory": f"{module}:f"}, "sklearn:diabetes"),
                        capsys)
    finally:
        sys.modules.pop(module, None)
    assert code == 4
    assert expected.format(module=module) in err


def test_a_model_that_raises_on_the_explained_rows_is_found_at_the_probe(
        folder: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, module = folder
    code, err = run(suite(root, {"factory": f"{module}:raises"}, "sklearn:diabetes"), capsys)
    assert code == 4
    assert "raised ValueError on the explained rows: this model cannot handle these rows" in err
