"""``model_card.md`` / ``model_card.json`` (issue 15, item 7): each field is checked against the
suite and results it came from, unknown fields say "not documented", hostile text is inert,
and the files are in the folder's manifest with their SHA-256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reports_support import make_result
from test_regulatory_mapping import FULL_DOCUMENTATION, performance

import xaudit
from xaudit.reports.model_card import NOT_DOCUMENTED, SECTIONS
from xaudit.results import AuditResult


def write_card(result: AuditResult, out: Path) -> tuple[dict[str, Any], str]:
    xaudit.render(result, out, formats=("model_card",))
    card = json.loads((out / "model_card.json").read_text(encoding="utf-8"))
    return card, (out / "model_card.md").read_text(encoding="utf-8")


MODEL_FACTS = {"version": "2.1", "training_procedure": "fitted once on the training rows",
               "data_lineage": "extract of 2024-01-31", "limitations": ["one study only"]}


def test_fields_come_from_the_suite_and_results(tmp_path: Path) -> None:
    result = make_result(["a", "b", "c"], n=10, documentation=FULL_DOCUMENTATION | MODEL_FACTS)
    check = performance()
    result.checks.append(check)
    card, markdown = write_card(result, tmp_path)
    assert list(card) == [key for key, _ in SECTIONS]
    for _, heading in SECTIONS:
        assert f"## {heading}\n" in markdown
    details = card["model_details"]
    assert details["name"] == result.model["name"]
    assert details["sha256"] == result.model["sha256"]
    assert details["owner"] == FULL_DOCUMENTATION["owner"]
    assert details["sign_off"]["approved_by"] == FULL_DOCUMENTATION["approved_by"]
    assert details["inputs"] == ["a", "b", "c"]
    assert card["intended_use"]["primary_uses"] == FULL_DOCUMENTATION["intended_use"]
    assert card["intended_use"]["out_of_scope"] == FULL_DOCUMENTATION["out_of_scope"]
    assert card["factors"] == {"relevant_factors": ["b"], "evaluation_factors": ["b"]}
    [metric] = card["metrics"]["performance"]
    assert metric["value"] == check.value
    assert (metric["ci_low"], metric["ci_high"]) == (check.details["ci_low"],
                                                     check.details["ci_high"])
    assert card["metrics"]["decision_threshold"] == FULL_DOCUMENTATION["decision"]
    [completeness] = card["metrics"]["explanation_checks"]
    assert completeness["name"] == "completeness@abl"
    assert completeness["value"] == result.checks[0].value
    [group] = card["quantitative_analyses"]["per_group"]
    source = check.details["segments"][0]["groups"][0]
    assert (group["feature"], group["group"], group["rows"], group["value"]) == (
        "b", source["label"], source["rows"], source["value"])
    assert card["evaluation_data"]["rows"] == result.data["n_test"]
    assert card["training_data"]["rows"] == result.data["n_train"]
    assert card["evaluation_data"]["sha256"] == result.data["sha256"]
    assert "| b | 0 | 30 | 0.41 |" in markdown
    assert details["version"] == MODEL_FACTS["version"]
    assert card["training_data"]["procedure"] == MODEL_FACTS["training_procedure"]
    assert card["training_data"]["lineage"] == MODEL_FACTS["data_lineage"]
    assert card["caveats_and_recommendations"]["limitations"] == MODEL_FACTS["limitations"]


def test_unknown_fields_say_not_documented(tmp_path: Path) -> None:
    card, markdown = write_card(make_result(["a", "b"]), tmp_path)
    assert card["intended_use"] == {"primary_uses": NOT_DOCUMENTED,
                                    "primary_users": NOT_DOCUMENTED,
                                    "out_of_scope": NOT_DOCUMENTED}
    assert card["model_details"]["owner"] == NOT_DOCUMENTED
    assert card["model_details"]["version"] == NOT_DOCUMENTED
    assert card["metrics"]["performance"] == NOT_DOCUMENTED
    assert card["quantitative_analyses"]["per_group"] == NOT_DOCUMENTED
    assert card["ethical_considerations"]["considerations"] == NOT_DOCUMENTED
    assert "- primary uses: not documented" in markdown


def test_hostile_text_is_inert(tmp_path: Path) -> None:
    hostile = "# Approved\n<script>x</script> | [link](http://evil) \x1b[2J\u202e"
    documentation = {"intended_use": hostile, "owner": "team", "out_of_scope": [hostile]}
    card, markdown = write_card(make_result(["a", "b"], documentation=documentation), tmp_path)
    assert "\\x1b" in card["intended_use"]["primary_uses"]
    assert "\\u202e" in card["intended_use"]["primary_uses"]
    assert "\x1b" not in markdown
    assert "\u202e" not in markdown
    assert "<script>" not in markdown
    assert "\n# Approved" not in markdown
    assert "](http" not in markdown
    assert "\\<script\\>" in markdown


def test_card_is_in_the_manifest(tmp_path: Path) -> None:
    xaudit.render(make_result(["a", "b"]), tmp_path, formats=("json", "model_card"))
    listed = json.loads((tmp_path / "manifest.json").read_text())["files"]
    for name in ("model_card.md", "model_card.json"):
        assert listed[name] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
