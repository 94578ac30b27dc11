"""Every integer parameter that sets work has the upper bound docs/suites.md documents.

The table "Upper bounds on work" in docs/suites.md is the oracle: each row's bound must be the
``le`` of that field in each named plugin's ``Params``, and every integer field of every
built-in plugin's ``Params`` must either be in the table or be listed below with the reason it
sets no work. A new parameter thus cannot arrive unbounded without someone deciding so. A bound
is enforced through ``xaudit validate`` (exit 4, the field's path).
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import yaml

from xaudit.cli import main
from xaudit.host import Host, create_host

DOCS = Path(__file__).resolve().parents[1] / "docs" / "suites.md"

SETS_NO_WORK = {
    "max_batch": "rows per model call: bounds memory per call; the work is the same",
    "chunk_size": "rows per chunk of TreeSHAP: bounds memory per call",
    "chunk_coalitions": "coalitions per chunk of exact Shapley: bounds memory per call",
    "batch_size": "perturbed images per model call in lime.image: bounds memory",
    "max_rows": "a cap on rows measured: lowers work, bounded by the data",
    "max_layers": "a cap on layers randomized: bounded by the model",
    "weights_index": "an index into the model's outputs",
    "query_token": "an index into the tokens",
    "element": "an index into the tensors a layer returns",
    "top_k": "a number of features picked from those that exist",
    "k": "a number of features picked from those that exist",
    "min_group": "a least group size: a floor on rows, it sets no work",
    "output": "an output name or index",
    "stability_top_k": "a number of features picked from those that exist",
    "num_features": "a number of features picked from those that exist",
    "top_labels": "a number of outputs picked from those that exist",
    "mask_segments": "a number of superpixels picked from those that exist",
    "patch_size": "a patch side length, bounded by the image",
    "subset_size": "features perturbed together, bounded by the features",
    "reinit_seed": "a seed",
    "output_key": "an index into the model's outputs",
    "channel_axis": "an axis index",
    "target_class": "an output index",
}


def _int_fields(params: Any) -> Iterator[tuple[str, Any]]:
    for name, info in params.model_fields.items():
        text = str(info.annotation)
        if re.search(r"\bint\b", text) and not re.search(r"\b(list|dict|tuple)\[", text):
            yield name, info


def _upper(info: Any) -> float | None:
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Le):
            return float(meta.le)
        if isinstance(meta, annotated_types.Lt):
            return float(meta.lt)
    return None


def documented_bounds() -> dict[tuple[str, str], int]:
    """(plugin name, field) -> bound, from the table in docs/suites.md."""
    text = DOCS.read_text()
    table = text[text.index("## Upper bounds on work"):]
    bounds = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[2].isdigit():
            continue
        for field in re.findall(r"`([^`]+)`", cells[0]):
            for plugin in re.findall(r"`([^`]+)`", cells[1]) or ["suite"]:
                bounds[(plugin, field)] = int(cells[2])
    return bounds


@pytest.fixture(scope="module")
def host() -> Host:
    return create_host(autoload=False)


def plugin_params(host: Host) -> dict[str, Any]:
    params = {name: cls.Params for name, cls in host.explainers.items()}
    params.update({name: cls.Params for name, cls in host.checks.items()})
    params.update({name: cls.Options for name, cls in host.adapters.items()})
    return params


def test_documented_bounds_are_the_enforced_ones(host: Host) -> None:
    bounds = documented_bounds()
    assert len(bounds) >= 30
    params = plugin_params(host)
    for (plugin, field), bound in bounds.items():
        if plugin == "suite":
            continue
        assert plugin in params, f"docs name unknown plugin {plugin}"
        info = params[plugin].model_fields[field]
        assert _upper(info) == bound, (plugin, field, _upper(info), bound)


def test_every_integer_parameter_is_bounded_or_sets_no_work(host: Host) -> None:
    documented = {(p, f) for p, f in documented_bounds()}
    unclassified = []
    for plugin, params in plugin_params(host).items():
        for field, _ in _int_fields(params):
            if (plugin, field) not in documented and field not in SETS_NO_WORK:
                unclassified.append(f"{plugin}.{field}")
    assert not unclassified, ("integer parameters with neither a documented bound nor a reason "
                              f"to have none: {unclassified}")


@pytest.fixture
def suite_file(tmp_path: Path) -> Iterator[Path]:
    name = f"xaudit_bounds_models_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text("def linear(data):\n    raise AssertionError\n")
    document = {
        "name": "bounds", "model": {"factory": f"{name}:linear"},
        "data": {"source": "sklearn:diabetes"},
        "explainers": [{"id": "pi", "method": "permutation_importance",
                        "params": {"n_repeats": 10**12}},
                       {"id": "ks", "method": "shap.kernel", "params": {"n_samples": 2**21}}],
        "checks": [{"check": "deletion", "explainer": "ks", "params": {"steps": 10**6}}],
        "report": {"formats": ["json"], "max_subjects": 10**9},
    }
    path = tmp_path / "bounds.yaml"
    path.write_text(yaml.safe_dump(document))
    yield path
    sys.modules.pop(name, None)


def test_unbounded_work_is_refused_by_validate(suite_file: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(suite_file)]) == 4
    err = capsys.readouterr().err
    for where in ("explainers[0].params.n_repeats: Input should be less than or equal to 1000",
                  "explainers[1].params.n_samples: Input should be less than or equal to 1048576",
                  "checks[0].params.steps: Input should be less than or equal to 10000",
                  "report.max_subjects: Input should be less than or equal to 10000"):
        assert where in err, err
