"""Tamper evidence: manifest.json, ``xaudit verify``, Ed25519 signatures, ``xaudit keygen``.

One audit (a failing gate, so there is a verdict worth forging) is run once, signed, with a
PDF; each test tampers with a copy of its folder as someone editing evidence would, and
``xaudit verify`` must name the file. The oracles are independent of xaudit: ``hashlib`` for
the digests, pypdf for the PDF's attachment and the cryptography package's own Ed25519
verification for the signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from pypdf import PdfReader

import xaudit
from xaudit.cli import main
from xaudit.results import AuditResult

MODELS = '''\
from sklearn.tree import DecisionTreeRegressor


def tree(data):
    return DecisionTreeRegressor(max_depth=3, random_state=0).fit(data.X_train, data.y_train)
'''


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(results folder, private key): a failed gate, signed, with report.pdf."""
    root = tmp_path_factory.mktemp("evidence")
    (root / "evidence_models.py").write_text(MODELS)
    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": "evidence", "seed": 2,
        "model": {"factory": "evidence_models:tree"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 4}, "background": {"n": 8}},
        "explainers": [{"id": "abl", "method": "ablation"}],
        "checks": [{"check": "completeness", "explainer": "abl", "gate": {"threshold": 1e-9}}],
        "report": {"formats": ["json", "pdf", "md", "junit"]},
    }))
    key = root / "keys" / "audit.key"
    key.parent.mkdir()
    assert main(["keygen", str(key)]) == 0
    out = root / "out"
    assert main(["run", "-q", str(root / "suite.yaml"), "--out", str(out),
                 "--sign-key", str(key)]) == 1
    return out, key


@pytest.fixture
def folder(signed: tuple[Path, Path], tmp_path: Path) -> Path:
    """A copy of the signed results folder to tamper with."""
    return Path(shutil.copytree(signed[0], tmp_path / "copy"))


def verify(folder: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", str(folder), *args])
    return code, capsys.readouterr().out


def rewrite_manifest(folder: Path) -> None:
    """What a forger without the key does next: recompute every digest (with hashlib)."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"] = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
                         for name in manifest["files"]}
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def edit_results(folder: Path, edit: Callable[[dict[str, object]], None]) -> None:
    path = folder / "results.json"
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def forge_pass(document: dict[str, object]) -> None:
    """The verdict edited from FAIL to PASS, as consistently as a careful forger would."""
    document["verdict"] = "PASSED"
    document["exit_code"] = 0
    for check in document["checks"]:
        check["status"], check["passed"] = "pass", True


# --- what a run writes ----------------------------------------------------------------------


def test_manifest_lists_every_output_with_its_sha256(signed: tuple[Path, Path]) -> None:
    out, _ = signed
    manifest = json.loads((out / "manifest.json").read_text())
    files = {p.name for p in out.iterdir()} - {"manifest.json", "manifest.sig"}
    assert set(manifest["files"]) == files == {"results.json", "arrays.npz", "report.pdf",
                                               "summary.md", "junit.xml"}
    for name, digest in manifest["files"].items():
        assert digest == hashlib.sha256((out / name).read_bytes()).hexdigest(), name
    embedded = PdfReader(out / "report.pdf").attachments["results.json"][0]
    assert embedded == (out / "results.json").read_bytes()


def test_signature_verifies_with_the_public_key(signed: tuple[Path, Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out, key = signed
    public = serialization.load_pem_public_key(Path(f"{key}.pub").read_bytes())
    signature = base64.b64decode((out / "manifest.sig").read_text())
    public.verify(signature, (out / "manifest.json").read_bytes())
    code, printed = verify(out, capsys, "--public-key", f"{key}.pub")
    assert code == 0
    assert "verified (5 file(s) match manifest.json; signature valid)" in printed
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_an_untouched_folder_verifies_without_a_key(signed: tuple[Path, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, printed = verify(signed[0], capsys)
    assert code == 0
    assert "signature not checked" in printed


# --- what verify catches --------------------------------------------------------------------


def test_a_verdict_edited_from_fail_to_pass(folder: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    edit_results(folder, forge_pass)
    code, printed = verify(folder, capsys)
    assert code == 1
    assert "CHANGED results.json: changed since it was written" in printed
    assert "CHANGED report.pdf: its attached results.json differs" in printed


def test_a_forged_verdict_shows_even_with_the_manifest_rewritten(
        folder: Path, signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    edit_results(folder, forge_pass)
    rewrite_manifest(folder)
    code, printed = verify(folder, capsys)
    assert code == 1
    assert "results.json: check 'completeness@abl': recorded PASS, but its value" in printed
    assert "report.pdf: its attached results.json differs" in printed
    code, printed = verify(folder, capsys, "--public-key", f"{signed[1]}.pub")
    assert code == 1
    assert "CHANGED manifest.sig: does not verify" in printed


def test_an_edited_number(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def nudge(document: dict[str, object]) -> None:
        document["checks"][0]["value"] *= 1.001

    edit_results(folder, nudge)
    code, printed = verify(folder, capsys)
    assert code == 1
    assert "CHANGED results.json" in printed


def test_an_edited_attribution_in_arrays_npz(folder: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with np.load(folder / "arrays.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["explanations/abl/values"][0, 0, 0] += 1.0
    with (folder / "arrays.npz").open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    code, printed = verify(folder, capsys)
    assert code == 1
    assert printed.splitlines()[0].startswith("CHANGED arrays.npz: changed since it was written")


def test_a_replaced_pdf(folder: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    result = AuditResult.load(folder)
    result.checks[0].status = "pass"  # a report rendered from other results
    other = xaudit.render(result, tmp_path / "other", formats=("pdf",))
    shutil.copyfile(other[0], folder / "report.pdf")
    code, printed = verify(folder, capsys)
    assert code == 1
    assert "CHANGED report.pdf: changed since it was written" in printed
    rewrite_manifest(folder)
    code, printed = verify(folder, capsys)
    assert code == 1
    assert "CHANGED report.pdf: its attached results.json differs" in printed


def test_a_pdf_replaced_by_something_else(folder: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "report.pdf").write_bytes(b"%PDF-1.7\nnot really\n")
    rewrite_manifest(folder)
    code, printed = verify(folder, capsys)
    assert code == 1
    assert "CHANGED report.pdf: not a readable PDF" in printed


def test_a_missing_and_an_extra_file(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "junit.xml").unlink()
    (folder / "notes.txt").write_text("added later\n")
    code, printed = verify(folder, capsys)
    assert code == 1
    assert "CHANGED junit.xml: missing (listed in manifest.json)" in printed
    assert "CHANGED notes.txt: not listed in manifest.json" in printed


def test_a_wrong_key_or_an_edited_manifest_fails_the_signature(
        folder: Path, tmp_path: Path, signed: tuple[Path, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", str(tmp_path / "other.key")]) == 0
    code, printed = verify(folder, capsys, "--public-key", str(tmp_path / "other.key.pub"))
    assert code == 1
    assert "manifest.json names signer ed25519:" in printed
    assert "CHANGED manifest.sig: does not verify" in printed
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["summary.md"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    code, printed = verify(folder, capsys, "--public-key", f"{signed[1]}.pub")
    assert code == 1
    assert "CHANGED summary.md: changed since it was written" in printed
    assert "CHANGED manifest.sig: does not verify" in printed
    public = serialization.load_pem_public_key(Path(f"{signed[1]}.pub").read_bytes())
    with pytest.raises(InvalidSignature):  # the library agrees
        public.verify(base64.b64decode((folder / "manifest.sig").read_text()),
                      (folder / "manifest.json").read_bytes())


def test_an_unsigned_folder_fails_when_a_signature_is_required(
        folder: Path, signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "manifest.sig").unlink()
    assert verify(folder, capsys)[0] == 0
    code, printed = verify(folder, capsys, "--public-key", f"{signed[1]}.pub")
    assert code == 1
    assert "CHANGED manifest.sig: missing: the folder is not signed" in printed


# --- what verify refuses --------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["no folder", "no manifest", "not json", "other version"])
def test_an_unreadable_folder_exits_4(folder: Path, damage: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    target = folder
    if damage == "no folder":
        target = folder / "nothing-here"
    elif damage == "no manifest":
        (folder / "manifest.json").unlink()
    elif damage == "not json":
        (folder / "manifest.json").write_text("{ nope")
    else:
        (folder / "manifest.json").write_text(json.dumps({"manifest_version": 99, "files": {}}))
    code = main(["verify", str(target)])
    assert code == 4
    assert "Traceback" not in capsys.readouterr().err


def test_keygen_refuses_to_overwrite_and_sign_key_must_be_a_key(
        tmp_path: Path, signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, key = signed
    assert main(["keygen", str(key)]) == 4
    assert "exists" in capsys.readouterr().err
    suite = key.parent.parent / "suite.yaml"
    for bad in (Path(f"{key}.pub"), tmp_path / "missing.key"):
        assert main(["run", "-q", str(suite), "--out", str(tmp_path / "out"), "--sign-key",
                     str(bad)]) == 4
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_rerendering_in_place_keeps_the_runs_files_listed(
        folder: Path, signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    before = json.loads((folder / "manifest.json").read_text())["files"]
    assert main(["report", str(folder), "--formats", "md", "--sign-key", str(signed[1])]) == 0
    after = json.loads((folder / "manifest.json").read_text())["files"]
    assert after == before  # the same bytes re-rendered, every file still listed
    assert verify(folder, capsys, "--public-key", f"{signed[1]}.pub")[0] == 0
    assert main(["report", str(folder), "--formats", "md"]) == 0
    assert not (folder / "manifest.sig").exists()  # unsigned now: no stale signature is left
    assert verify(folder, capsys)[0] == 0


def test_a_file_edited_before_a_rerender_in_place_is_still_caught(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = folder / "junit.xml"
    junit.write_text(junit.read_text().replace("FAILED", "PASSED"))
    assert main(["report", str(folder), "--formats", "md"]) == 0
    code, printed = verify(folder, capsys)
    assert code == 1  # the carried junit.xml keeps the digest the run recorded
    assert "CHANGED junit.xml: changed since it was written" in printed
    assert "summary.md" not in printed


def test_a_link_in_the_folder_is_a_finding_not_followed(
        folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the link points at the very bytes the run wrote, so following it would "verify"
    elsewhere = tmp_path / "summary-elsewhere.md"
    (folder / "summary.md").rename(elsewhere)
    (folder / "summary.md").symlink_to(elsewhere)
    assert hashlib.sha256((folder / "summary.md").read_bytes()).hexdigest() == json.loads(
        (folder / "manifest.json").read_text())["files"]["summary.md"]
    code, printed = verify(folder, capsys)
    assert code == 1
    assert "CHANGED summary.md:" in printed
    assert "symbolic link" in printed
