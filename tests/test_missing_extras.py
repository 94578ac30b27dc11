"""A missing optional install is refused with the extra to install, exit 4 and no traceback.

Each command runs in a fresh interpreter in which the named packages cannot be imported or
found (a meta-path finder refuses them), as on an install without that extra.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import xaudit
from xaudit.cli import main
from xaudit.errors import InputError
from xaudit.extras import EXTRAS, MissingExtraError, missing_packages

WITHOUT = """
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
from xaudit.cli import main
sys.exit(main(sys.argv[2:]))
"""


def xaudit_without(packages: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT, packages, *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=240)


MODELS = """
import numpy as np
def linear(data):
    class Linear:
        def __call__(self, X):
            return np.asarray(X, dtype=float) @ np.arange(1.0, X.shape[1] + 1)
    return Linear()
"""


def write_suite(folder: Path, name: str, source: str, formats: list[str],
                model: dict[str, object] | None = None) -> Path:
    (folder / "models_extras.py").write_text(MODELS)
    rows = np.random.default_rng(0).normal(size=(20, 3))
    np.savez(folder / "data.npz", X=rows, y=rows.sum(axis=1))
    (folder / "data.csv").write_text("a,b,y\n1,2,3\n4,5,9\n7,8,15\n2,2,4\n")
    document = {"name": name, "seed": 1,
                "model": model or {"factory": "models_extras:linear"},
                "data": {"source": source, "explain": {"n": 2}, "background": {"n": 2}},
                "explainers": [{"id": "abl", "method": "ablation"}],
                "report": {"formats": formats}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def assert_refused(done: subprocess.CompletedProcess[str], extra: str, field: str = "") -> None:
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert f"xaudit[{extra}]" in done.stderr
    assert field in done.stderr


@pytest.mark.parametrize("command", ["validate", "run"])
def test_csv_data_without_pandas(tmp_path: Path, command: str) -> None:
    suite = write_suite(tmp_path, "csv", "data.csv", ["json"])
    assert_refused(xaudit_without("pandas", command, str(suite), cwd=tmp_path), "data",
                   "data.source")


def test_sklearn_dataset_without_scikit_learn(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "bunch", "sklearn:diabetes", ["json"])
    assert_refused(xaudit_without("sklearn", "validate", str(suite), cwd=tmp_path), "sklearn",
                   "data.source")


@pytest.mark.parametrize(("fmt", "hidden"), [("html", "fontTools"), ("pdf", "weasyprint")])
def test_report_formats_without_their_extra(tmp_path: Path, fmt: str, hidden: str) -> None:
    suite = write_suite(tmp_path, "fmt", "data.npz", [fmt])
    assert_refused(xaudit_without(hidden, "validate", str(suite), cwd=tmp_path), fmt,
                   "report.formats[0]")
    saved = write_suite(tmp_path, "saved", "data.npz", ["json"])
    assert main(["run", "-q", str(saved), "--out", str(tmp_path / "out")]) == 5  # no gate
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    done = xaudit_without(hidden, "report", str(tmp_path / "out"), "--formats", fmt,
                          cwd=tmp_path)
    assert_refused(done, fmt)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before


def test_formats_option_checks_the_extras_of_the_formats_it_uses(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "pdfsuite", "data.npz", ["pdf"])
    kept = xaudit_without("weasyprint", "run", str(suite), "--out", "a", "--formats", "json,md",
                          cwd=tmp_path)
    assert kept.returncode == 5, kept.stderr  # ran (no gate): the PDF was replaced
    assert (tmp_path / "a" / "summary.md").is_file()
    refused = xaudit_without("fontTools", "run", str(suite), "--out", "b", "--formats", "html",
                             cwd=tmp_path)
    assert_refused(refused, "html", "report.formats[0]")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("suffix", "extra", "hidden"),
                         [(".onnx", "onnx", "onnxruntime"), (".pt", "torch", "torch")])
def test_model_files_without_their_adapter(tmp_path: Path, suffix: str, extra: str,
                                           hidden: str) -> None:
    (tmp_path / f"model{suffix}").write_bytes(b"not read: refused before loading")
    suite = write_suite(tmp_path, "file", "data.npz", ["json"],
                        model={"path": f"model{suffix}"})
    assert_refused(xaudit_without(hidden, "run", str(suite), cwd=tmp_path), extra,
                   "model.path")


def test_mlflow_signing_and_verify_without_their_extra(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "gov", "data.npz", ["json"])
    (tmp_path / "some.key").write_text("not read: refused before loading")
    out = tmp_path / "out"
    assert_refused(xaudit_without("mlflow", "run", str(suite), "--out", str(out), "--mlflow",
                                  cwd=tmp_path), "mlflow", "MLflow")
    assert_refused(xaudit_without("cryptography", "run", str(suite), "--out", str(out),
                                  "--sign-key", "some.key", cwd=tmp_path), "sign", "cryptography")
    assert not out.exists()  # refused before the run
    assert_refused(xaudit_without("cryptography", "keygen", "new.key", cwd=tmp_path), "sign")
    assert not (tmp_path / "new.key").exists()
    assert main(["run", "-q", str(suite), "--out", str(out)]) == 5  # no gate
    assert main(["verify", "-q", str(out)]) == 0  # verifiable with the extra installed
    assert_refused(xaudit_without("pypdf", "verify", str(out), cwd=tmp_path), "verify", "pypdf")


def test_plugins_says_which_adapters_cannot_run(tmp_path: Path) -> None:
    done = xaudit_without("torch,onnx", "plugins", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "cannot run here: torch (needs xaudit[torch]: torch not installed)" in done.stdout
    assert "cannot run here: onnx (needs xaudit[onnx]: onnx not installed)" in done.stdout
    assert "cannot run here: sklearn" not in done.stdout


def test_missing_extra_error_is_an_input_error_naming_the_extra() -> None:
    assert missing_packages("sklearn") == ()  # installed in the test environment
    error = MissingExtraError("the html report", "html", ("fontTools",))
    assert isinstance(error, InputError)
    assert str(error) == ("the html report needs fontTools, which is not installed: "
                          "pip install 'xaudit[html]'")


DISTRIBUTIONS = {"sklearn": "scikit-learn", "skimage": "scikit-image", "fontTools": "fonttools"}


def test_extras_table_matches_the_package_metadata() -> None:
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]

    def requirements(extra: str) -> set[str]:
        names: set[str] = set()
        for spec in declared[extra]:
            if spec.startswith("xaudit["):
                for inner in spec.removeprefix("xaudit[").rstrip("]").split(","):
                    names |= requirements(inner)
            else:
                names.add(re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower())
        return names

    for extra, modules in EXTRAS.items():
        needed = {DISTRIBUTIONS.get(module, module).lower() for module in modules}
        assert needed <= requirements(extra), extra
    assert not {"pytest", "ruff", "mypy", "shap", "captum", "lime"} & requirements("all")


def test_lime_names_a_text_column_missing_from_categorical_features() -> None:
    rows = np.array([[1.0, "red"], [2.0, "blue"], [3.0, "red"], [0.5, "blue"]], dtype=object)

    def predict(X: np.ndarray) -> np.ndarray:
        return np.asarray(X[:, 0], dtype=float) + (X[:, 1] == "red")

    model = xaudit.adapt(predict, feature_names=["dose", "colour"], feature_shape=[2])
    with pytest.raises(InputError, match=r"feature 'colour' holds text \('red'\) but is not in "
                                         r"categorical_features"):
        xaudit.explain(model, rows, method="lime.tabular", background=rows)
    explanation = xaudit.explain(model, rows, method="lime.tabular", background=rows,
                                 categorical_features=["colour"], n_samples=200)
    assert explanation.values.shape == (4, 2, 1)
