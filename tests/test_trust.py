"""Trust cannot be bypassed: only ``model.trust`` (``trust=True`` in Python, ``--trust`` on the
command line) lets a pickle load.

The pickle below creates a marker file when it is unpickled, so the oracle is the file system:
the marker must not appear when trust is given through ``model.options``. The control run, with
``model.trust: true``, shows the payload really runs when trusted (so the test can fail).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml

from xaudit.cli import main
from xaudit.data import Dataset
from xaudit.errors import ModelLoadError
from xaudit.host import create_host
from xaudit.runner import load_model
from xaudit.suite import ModelSpec


class _Payload:
    """Unpickling this calls ``Path(marker).touch()``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return Path.touch, (self.marker,)


def write_suite(folder: Path, model: dict[str, Any]) -> Path:
    (folder / "model.pkl").write_bytes(pickle.dumps(_Payload(folder / "MARKER")))
    suite = {"name": "trust", "model": {"path": "model.pkl", **model},
             "data": {"source": "sklearn:diabetes", "explain": {"n": 2}},
             "explainers": [{"id": "abl", "method": "ablation"}],
             "report": {"formats": ["json"]}}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.mark.parametrize("command", ["validate", "run"])
def test_trust_in_options_is_refused_and_the_pickle_never_loads(
        tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path, {"options": {"trust": True}})
    argv = [command, str(suite)] + (["--out", str(tmp_path / "out")] if command == "run" else [])
    assert main(argv) == 4
    err = capsys.readouterr().err
    assert "model.options.trust: 'trust' is a security switch" in err
    assert "set model.trust instead" in err
    assert not (tmp_path / "MARKER").exists()
    assert not (tmp_path / "out").exists()


def test_model_trust_false_wins_over_options_in_the_loader(tmp_path: Path) -> None:
    """Defence in depth: even a suite built in Python that skipped validation cannot pass
    ``trust`` through options."""
    write_suite(tmp_path, {})
    spec = ModelSpec(path="model.pkl", trust=False, options={"trust": True})
    dataset = Dataset.from_arrays([[0.0, 1.0]])
    with pytest.raises(ModelLoadError, match="pickle and joblib files can run arbitrary code"):
        load_model(spec, dataset, tmp_path, create_host(autoload=False))
    assert not (tmp_path / "MARKER").exists()


def test_control_model_trust_true_does_unpickle(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path, {"trust": True})
    assert main(["run", str(suite), "--out", str(tmp_path / "out")]) == 4  # not an estimator
    assert (tmp_path / "MARKER").exists()
    assert "has no predict method" in capsys.readouterr().err
