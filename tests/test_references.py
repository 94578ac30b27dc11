"""``module:function`` references: one import, one search order (the folder, then sys.path).

Two folders hold a module of the same name whose function says which folder it came from; the
reference must resolve to the folder given as ``near`` first, and to ``sys.path`` otherwise,
whether the namesake was imported before or not. The runner (``model.factory``) and the torch
adapter (``factory``) both resolve through it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import xaudit
from xaudit.errors import ModelLoadError
from xaudit.references import import_reference

MODULE = "xaudit_reference_probe"


def write_module(folder: Path, tag: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODULE}.py").write_text(
        f"TAG = {tag!r}\n\ndef where():\n    return TAG\n\n"
        "class Builder:\n    @staticmethod\n    def build():\n        return TAG\n")
    return folder


@pytest.fixture
def two_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    near = write_module(tmp_path / "suite", "near")
    on_path = write_module(tmp_path / "site", "sys.path")
    monkeypatch.syspath_prepend(str(on_path))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield near, on_path
    sys.modules.pop(MODULE, None)


def test_the_folder_comes_before_sys_path(two_folders: tuple[Path, Path]) -> None:
    near, _ = two_folders
    assert import_reference(f"{MODULE}:where")() == "sys.path"  # imported (cached) from sys.path
    assert import_reference(f"{MODULE}:where", near)() == "near"  # the cached namesake is not used
    assert import_reference(f"{MODULE}:Builder.build", near)() == "near"
    assert str(near.resolve()) not in sys.path  # only while importing


def test_sys_path_when_the_folder_lacks_the_module(two_folders: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert import_reference(f"{MODULE}:where", empty)() == "sys.path"


def test_bad_references_are_model_load_errors(tmp_path: Path) -> None:
    for reference, message in (("no_colon", "must look like 'module:function'"),
                               (":f", "must look like"), ("m:", "must look like"),
                               ("xaudit_no_such_module:f", "cannot be imported"),
                               ("json:no_such_function", "cannot be imported")):
        with pytest.raises(ModelLoadError, match=message):
            import_reference(reference, tmp_path, "model.factory")


def test_suite_factory_resolves_next_to_the_suite(two_folders: tuple[Path, Path]) -> None:
    near, _ = two_folders
    (near / f"{MODULE}.py").write_text(
        "import numpy as np\n\ndef build():\n"
        "    return lambda X: np.asarray(X, dtype=float).sum(axis=1)\n")
    rows = np.arange(12.0).reshape(4, 3)
    np.savetxt(near / "data.csv", rows, delimiter=",", header="a,b,c", comments="")
    suite = {"name": "factory-next-to-the-suite", "seed": 0, "data": {"source": "data.csv"},
             "model": {"factory": f"{MODULE}:build", "task": "regression",
                       "output_names": ["s"]},
             "explainers": [{"id": "a", "method": "ablation"}]}
    (near / "suite.yaml").write_text(yaml.safe_dump(suite))
    result = xaudit.run_suite(near / "suite.yaml")
    assert not result.explainer_errors
    assert result.explanations["a"].values.shape[1:] == (3, 1)


def test_torch_factory_resolves_next_to_the_weights_first(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    build = "import torch\n\ndef build():\n    return torch.nn.Linear({}, 2)\n"
    here, elsewhere = tmp_path / "weights", tmp_path / "site"
    here.mkdir()
    elsewhere.mkdir()
    (here / "xaudit_arch_probe.py").write_text(build.format(4))
    (elsewhere / "xaudit_arch_probe.py").write_text(build.format(5))
    monkeypatch.syspath_prepend(str(elsewhere))
    monkeypatch.delitem(sys.modules, "xaudit_arch_probe", raising=False)
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(4, 2).state_dict(), here / "w.pt")
    model = xaudit.adapt(here / "w.pt", factory="xaudit_arch_probe:build", device="cpu")
    assert model.input_spec.feature_shape == (4,)  # the width-5 namesake would not load
    sys.modules.pop("xaudit_arch_probe", None)
