"""The output folder is written as a unit (docs/reports.md, "The output folder").

A run (or ``xaudit report``) replaces the folder as a whole when every file is written, so the
folder always holds one complete run: never files of two runs, never a truncated file. These
tests drive the CLI in-process (and one real process for a kernel-level write failure) and read
the folder back with the standard library, comparing bytes before and after:

* a second run with fewer formats leaves none of the first run's files;
* a symbolic link planted in the folder is not written through (the file it points to keeps
  its bytes) and not followed when reading;
* a full disk (``ENOSPC`` half-way through a file, and a real ``EFBIG`` from the kernel under a
  file-size limit) gives exit 3 with a message, and the previous run untouched;
* the location is refused before any explainer runs (exit 4): an existing file, a parent that
  is a file, a place that cannot be written, a folder of someone else's files, a mount point;
* a folder another run holds is refused naming the holder; a lock left by a dead process is not;
* ``xaudit report`` in place keeps the results byte for byte and renders the same bytes.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from folder_support import (
    Workspace,
    leftovers,
    snapshot,
    status_of,
)

import xaudit
from xaudit.comparison import COMPARISON_FILE
from xaudit.errors import InputError, OutputError
from xaudit.manifest import MANIFEST_FILE, SIGNATURE_FILE
from xaudit.output_folder import FOLDER_FILES, FolderReader, OutputFolder
from xaudit.reports import HTML_FILE, PDF_FILE
from xaudit.reports.junit import JUNIT_FILE
from xaudit.reports.markdown import SUMMARY_FILE
from xaudit.reports.model_card import MODEL_CARD_JSON, MODEL_CARD_MD
from xaudit.result_store import ZARR_FILE
from xaudit.results import ARRAYS_FILE, RESULTS_FILE, AuditResult

pytest_plugins = ["folder_support"]  # its ``ws`` fixture: a workspace of models and plugins

LINUX = sys.platform.startswith("linux")


def run(ws: Workspace, suite: Path, out: Path, *options: str) -> int:
    return status_of(["-p", ws.plugin, "run", "-q", str(suite), "--out", str(out), *options])


@pytest.fixture
def previous(ws: Workspace) -> Path:
    """A folder holding a complete passing run."""
    out = ws.root / "out"
    assert run(ws, ws.passing(), out) == 0
    return out


def test_folder_files_are_every_format_file() -> None:
    assert {RESULTS_FILE, ARRAYS_FILE, ZARR_FILE, HTML_FILE, PDF_FILE, SUMMARY_FILE, JUNIT_FILE,
            COMPARISON_FILE, MANIFEST_FILE, SIGNATURE_FILE, MODEL_CARD_MD,
            MODEL_CARD_JSON} == FOLDER_FILES


# --- one run, one folder ------------------------------------------------------------------------


def test_rerun_with_fewer_formats_leaves_nothing_of_the_first_run(ws: Workspace,
                                                                   previous: Path) -> None:
    assert "PASSED" in (previous / SUMMARY_FILE).read_text()
    assert run(ws, ws.failing(formats=["json"]), previous) == 1
    assert sorted(p.name for p in previous.iterdir()) == [ARRAYS_FILE, MANIFEST_FILE,
                                                          RESULTS_FILE]
    assert json.loads((previous / RESULTS_FILE).read_text())["exit_code"] == 1
    assert leftovers(previous) == []


def test_planted_links_are_not_written_through(ws: Workspace, previous: Path) -> None:
    victim = ws.root / "victim.txt"
    victim.write_text("not xaudit's to write")
    (previous / SUMMARY_FILE).unlink()
    (previous / SUMMARY_FILE).symlink_to(victim)
    (previous / JUNIT_FILE).unlink()
    (previous / JUNIT_FILE).symlink_to(ws.root / "created-through-a-link.xml")
    assert run(ws, ws.failing(), previous) == 1
    assert victim.read_text() == "not xaudit's to write"
    assert not (ws.root / "created-through-a-link.xml").exists()
    for name in (SUMMARY_FILE, JUNIT_FILE, RESULTS_FILE):
        assert not (previous / name).is_symlink()
    assert "FAILED" in (previous / SUMMARY_FILE).read_text()


def test_links_inside_a_results_folder_are_not_followed_when_reading(
        ws: Workspace, previous: Path, capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = ws.root / "elsewhere.npz"
    (previous / ARRAYS_FILE).rename(elsewhere)
    (previous / ARRAYS_FILE).symlink_to(elsewhere)
    with pytest.raises(InputError, match=r"arrays\.npz is a symbolic link"):
        AuditResult.load(previous)
    before = snapshot(previous)
    assert status_of(["report", str(previous), "--formats", "md"]) == 4
    assert "is a symbolic link" in capsys.readouterr().err
    assert snapshot(previous) == before


def test_report_in_place_keeps_the_results_and_renders_the_same_bytes(
        ws: Workspace, previous: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p.name: p.read_bytes() for p in previous.iterdir()}
    (previous / JUNIT_FILE).unlink()
    assert status_of(["report", str(previous), "--formats", "junit"]) == 0
    assert capsys.readouterr().out.split() == [str(previous / JUNIT_FILE),
                                               str(previous / MANIFEST_FILE)]
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == before
    ET.parse(previous / JUNIT_FILE)  # well-formed, as written by the run


def test_report_elsewhere_replaces_that_folder(ws: Workspace, previous: Path) -> None:
    elsewhere = ws.root / "elsewhere"
    assert run(ws, ws.failing(), elsewhere) == 1
    assert status_of(["report", str(previous), "--formats", "md", "--out", str(elsewhere)]) == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == [MANIFEST_FILE, SUMMARY_FILE]
    assert (elsewhere / SUMMARY_FILE).read_bytes() == (previous / SUMMARY_FILE).read_bytes()


def test_a_reader_never_mixes_two_runs(ws: Workspace, previous: Path) -> None:
    """Files are opened relative to the folder as it was opened: a run replacing it meanwhile
    makes the next file unreadable (the old folder is removed), never the new run's file."""
    old = (previous / RESULTS_FILE).read_bytes()
    with FolderReader(previous) as reader:
        with reader.open(RESULTS_FILE) as handle:
            assert handle.read() == old
        assert run(ws, ws.failing(), previous) == 1
        with pytest.raises(InputError, match=r"holds no arrays\.npz"):
            reader.open(ARRAYS_FILE)
    assert (previous / RESULTS_FILE).read_bytes() != old


# --- a full disk --------------------------------------------------------------------------------


def full_disk_in(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make writing ``name`` fail half-way with ENOSPC, as a full disk does."""
    real = os.write

    def write(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(f"{name}.part"):
            real(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)


@pytest.mark.skipif(not LINUX, reason="finds the file being written through /proc")
@pytest.mark.parametrize("name", [RESULTS_FILE, ARRAYS_FILE, SUMMARY_FILE, JUNIT_FILE])
def test_full_disk_keeps_the_previous_run(ws: Workspace, previous: Path, name: str,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(previous)
    capsys.readouterr()
    full_disk_in(name, monkeypatch)
    assert run(ws, ws.failing(), previous) == 3
    err = capsys.readouterr().err
    assert f"while writing {name}: No space left on device" in err
    assert "still holds the previous complete run" in err
    assert "Traceback" not in err
    assert snapshot(previous) == before
    assert leftovers(previous) == []


@pytest.mark.skipif(not LINUX, reason="finds the file being written through /proc")
def test_full_disk_on_a_first_run_creates_no_folder(ws: Workspace,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = ws.root / "new"
    full_disk_in(JUNIT_FILE, monkeypatch)
    assert run(ws, ws.failing(), out) == 3
    assert f"{out} was not created" in capsys.readouterr().err
    assert not out.exists()
    assert leftovers(out) == []


def test_file_size_limit_in_a_real_process(ws: Workspace, previous: Path) -> None:
    """The kernel refuses the rest of results.json (EFBIG) after writing part of it."""
    before = snapshot(previous)
    limit = (previous / RESULTS_FILE).stat().st_size // 2

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = subprocess.run(
        [sys.executable, "-m", "xaudit", "-p", ws.plugin, "run", "-q", str(ws.failing()),
         "--out", str(previous)], cwd=ws.root, env=ws.env(), capture_output=True, text=True,
        preexec_fn=limited, timeout=300, check=False)
    assert process.returncode == 3, process.stderr
    assert f"while writing {RESULTS_FILE}: File too large" in process.stderr
    assert "Traceback" not in process.stderr
    assert snapshot(previous) == before
    assert leftovers(previous) == []


# --- the location, checked before any work ------------------------------------------------------


def unwritable(ws: Workspace) -> Path:
    if os.geteuid() != 0:
        locked = ws.root / "read-only"
        locked.mkdir(mode=0o555)
        return locked / "out"
    if LINUX:
        return Path("/sys/xaudit-out")  # sysfs refuses new entries, even to root
    pytest.skip("no place that root cannot write")


@pytest.mark.parametrize("case", ["existing-file", "parent-is-a-file", "unwritable",
                                  "foreign-files", "mount-point", "dangling-link"])
def test_output_location_is_refused_before_any_work(ws: Workspace, case: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    if case == "existing-file":
        out = ws.root / "taken"
        out.write_text("mine")
        reason = "is an existing file, not a folder"
    elif case == "parent-is-a-file":
        (ws.root / "taken").write_text("mine")
        out = ws.root / "taken" / "sub" / "out"
        reason = "Not a directory"
    elif case == "unwritable":
        out = unwritable(ws)
        reason = "is not writable"
    elif case == "foreign-files":
        out = ws.root / "project"
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        (out / RESULTS_FILE).mkdir()
        reason = f"holds notes.txt, {RESULTS_FILE}, which xaudit did not write"
    elif case == "dangling-link":
        out = ws.root / "link"
        out.symlink_to(ws.root / "planted-target")
        reason = "is a symbolic link to nothing"
    else:
        if not os.path.ismount("/proc"):
            pytest.skip("no mount point to try")
        out = Path("/proc")
        reason = "is a mount point"
    assert run(ws, ws.failing(), out) == 4
    err = capsys.readouterr().err
    assert reason in err
    assert "Traceback" not in err
    assert not (ws.flags / "explained").exists()  # no explainer ran
    if case == "existing-file":
        assert out.read_text() == "mine"
    if case == "foreign-files":
        assert (out / "notes.txt").read_text() == "mine"
    if case == "dangling-link":
        assert not (ws.root / "planted-target").exists()


def test_python_api_checks_the_location_before_running(ws: Workspace) -> None:
    taken = ws.root / "taken"
    taken.write_text("mine")
    with pytest.raises(OutputError, match="is an existing file"):
        xaudit.run_suite(ws.suite("api", explainers=[{"id": "p", "method": "test.pause"}]),
                         host=xaudit.create_host(plugins=[ws.plugin]), out_dir=taken)
    assert not (ws.flags / "explained").exists()


# --- the lock -----------------------------------------------------------------------------------


def test_a_folder_being_written_is_refused_naming_the_holder(
        ws: Workspace, previous: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(previous)
    with OutputFolder(previous):
        assert run(ws, ws.failing(), previous) == 4
        assert status_of(["report", str(previous), "--formats", "md"]) == 4
    err = capsys.readouterr().err
    assert err.count(f"is being written by another xaudit run (pid {os.getpid()} on ") == 2
    assert not (ws.flags / "explained").exists()
    assert snapshot(previous) == before
    assert leftovers(previous) == []


def test_a_lock_left_by_a_dead_process_is_taken(ws: Workspace, previous: Path) -> None:
    lock = previous.parent / f".{previous.name}.xaudit.lock"
    lock.write_text("pid 999999 on a host long gone")
    assert run(ws, ws.failing(), previous) == 1
    assert json.loads((previous / RESULTS_FILE).read_text())["exit_code"] == 1
    assert leftovers(previous) == []


def test_what_a_killed_run_left_is_recovered_by_the_next(ws: Workspace, previous: Path) -> None:
    """A run killed between the two renames left the previous folder aside and none in place:
    the next run into the folder puts it back first, here one whose model is refused while
    it is prepared (a suite refused by validation does not reach the folder at all)."""
    before = snapshot(previous)
    aside = previous.parent / f".{previous.name}.xaudit-0123456789ab.previous"
    previous.rename(aside)
    unfinished = previous.parent / f".{previous.name}.xaudit-ba9876543210.incomplete"
    unfinished.mkdir()
    (unfinished / ".results.json.part").write_text("{")
    invalid = ws.suite("invalid", factory="exits")
    assert run(ws, invalid, previous) == 4
    assert snapshot(previous) == before
    assert leftovers(previous) == []
