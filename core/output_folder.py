"""The output folder of a run, written as a unit, and read without following links inside it.

Writing (:class:`OutputFolder`): the location is checked before any work (:func:`check_output`)
and locked against a concurrent run (:class:`~xaudit.folder_lock.FolderLock`). Every file is
written into a staging folder beside the target, ``.NAME.xaudit-<random>.incomplete`` (same
file system), under a temporary name (``.FILE.part``), synced, and renamed to its final name
only when complete. When every file is there the staging folder replaces the target as a whole:
the previous folder is renamed aside (``.NAME.xaudit-<random>.previous``), the new one renamed
in, the previous one removed; SIGINT and SIGTERM are held back between the two renames. A run
that fails or is interrupted before that publishes nothing; the next run into the folder
removes what a killed run left beside it, and puts a previous folder back if a run died between
the two renames.

So a reader may assume that the folder holds exactly the files of one complete run (or of one
complete ``xaudit report`` into it), all derived from its ``results.json``. A run that did not
complete is never in the folder: it is a sibling whose name ends in ``.incomplete``.

Reading (:class:`FolderReader`): the folder is opened once and its files relative to it, with
``O_NOFOLLOW``, so a planted symbolic link is refused and the files read come from one folder
even while a run replaces it. POSIX only.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from .errors import InputError, OutputError, WriteError
from .folder_lock import FolderLock

FOLDER_FILES = frozenset({"results.json", "arrays.npz", "arrays.zarr.zip", "report.html",
                          "report.pdf", "summary.md", "junit.xml", "comparison.json",
                          "manifest.json", "manifest.sig", "model_card.md", "model_card.json"})
"""The names a results folder holds; a folder holding anything else is not replaced."""
_CHUNK = 1 << 20


def same_folder(one: str | Path, other: str | Path) -> bool:
    """Whether the two paths name the same folder once links are resolved."""
    return os.path.realpath(one) == os.path.realpath(other)


def check_output(target: str | Path) -> Path:
    """The absolute path of the output folder ``target`` (links resolved), checked before work.

    Raises :class:`~xaudit.errors.OutputError` for an existing file, a link to nothing, the
    file-system root, a mount point (the folder is replaced as a whole), a folder holding
    entries xaudit does not write (they would be lost), and a place where the folder cannot be
    created (the nearest existing ancestor is a file, or cannot be written).
    """
    if os.path.islink(target) and not os.path.exists(target):
        raise OutputError(f"{target} is a symbolic link to nothing; give the output a folder "
                          "name, or point the link at an existing folder")
    path = Path(os.path.realpath(target))
    if path == path.parent:
        raise OutputError(f"{target}: the output folder cannot be the file-system root; "
                          "name a folder")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise OutputError(f"cannot use {path} as the output folder: {exc.strerror}") from None
    if info is not None:
        if not stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{path} is an existing file, not a folder; give the output "
                              "(--out, report.out_dir) the name of a folder")
        if info.st_dev != os.stat(path.parent).st_dev:
            raise OutputError(f"{path} is a mount point, but the output folder is replaced as "
                              "a whole on every run; give a folder inside it")
        _refuse_foreign(path)
    _check_writable(path)
    return path


class OutputFolder:
    """The output folder ``target``, staged beside it and replaced as a unit (module docstring).

    Entering checks the location, takes the lock, cleans up after killed runs and creates the
    staging folder; with ``keep`` it starts as a copy of the regular files the folder holds (a
    report re-rendered in place keeps the results and the formats it does not write again).
    :meth:`write` adds a file (its SHA-256 kept in :attr:`written`, for ``manifest.json``),
    :meth:`remove` drops a carried one, :meth:`publish` replaces the folder. Leaving without
    publishing (an exception, an interrupt) removes the staging folder: the target is left as
    it was.
    Errors: :class:`~xaudit.errors.OutputError` when the location cannot be used (entering),
    :class:`~xaudit.errors.WriteError` when writing fails (a full disk).
    """

    def __init__(self, target: str | Path, *, keep: bool = False) -> None:
        self.path = Path(target)
        """The folder; absolute, with links resolved, once entered."""
        self.keep = keep
        self.published = False
        self.written: dict[str, str] = {}
        """The SHA-256 hex digest of each file :meth:`write` wrote (carried files excluded)."""
        self._lock: FolderLock | None = None
        self._staging: Path | None = None
        self._fd: int | None = None

    def __enter__(self) -> OutputFolder:
        self.path = check_output(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.path.parent}: {exc.strerror}") from None
        self._lock = FolderLock(self.path)
        self._lock.acquire()
        try:
            self._recover()
            check_output(self.path)  # again, now that no other run can change it
            self._staging = self._sibling("incomplete")
            os.mkdir(self._staging)  # permissions from the umask, as any new folder
            self._fd = os.open(self._staging, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            if self.keep and self.path.is_dir():
                self._carry()
        except OSError as exc:
            self._discard()
            raise WriteError(self._failure("preparing it", exc)) from exc
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._discard()

    def write(self, name: str, data: bytes) -> Path:
        """Write the file ``name`` (one of :data:`FOLDER_FILES`); returns its published path."""
        if name not in FOLDER_FILES:
            raise ValueError(f"{name!r} is not a file of a results folder")
        self._write(name, (data,))
        self.written[name] = hashlib.sha256(data).hexdigest()
        return self.path / name

    @contextmanager
    def stream(self, name: str) -> Iterator[Path]:
        """The staging path where a library that writes files by path (Zarr) writes the file
        ``name`` (one of :data:`FOLDER_FILES`); when the block ends without an error the file
        is synced, hashed into :attr:`written` and renamed to ``name`` (as :meth:`write`)."""
        if name not in FOLDER_FILES:
            raise ValueError(f"{name!r} is not a file of a results folder")
        if self._fd is None or self._staging is None:
            raise RuntimeError("stream() outside the OutputFolder's with block")
        part = f".{name}.part"
        yield self._staging / part
        digest = hashlib.sha256()
        try:
            fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._fd)
            try:
                for chunk in iter(partial(os.read, fd, _CHUNK), b""):
                    digest.update(chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(part, name, src_dir_fd=self._fd, dst_dir_fd=self._fd)
        except OSError as exc:
            raise WriteError(self._failure(f"writing {name}", exc)) from exc
        self.written[name] = digest.hexdigest()

    def remove(self, name: str) -> None:
        """Drop the file ``name`` from what will be published (a carried file gone stale)."""
        if self._fd is None:
            raise RuntimeError("remove() outside the OutputFolder's with block")
        self.written.pop(name, None)
        try:
            os.unlink(name, dir_fd=self._fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise WriteError(self._failure(f"removing {name}", exc)) from exc

    def publish(self) -> None:
        """Replace the folder by what was written: rename the old one aside, the new one in,
        and remove the old one, with SIGINT and SIGTERM held back between the renames."""
        if self._fd is None or self._staging is None:
            raise RuntimeError("publish() outside the OutputFolder's with block")
        previous = None
        try:
            os.fsync(self._fd)
            with _signals_held():
                if os.path.lexists(self.path):
                    _refuse_foreign(self.path)  # changed during the run: keep what is there
                    os.chmod(self._staging, stat.S_IMODE(os.stat(self.path).st_mode))
                    previous = self._sibling("previous")
                    os.rename(self.path, previous)
                    try:
                        os.rename(self._staging, self.path)
                    except OSError:
                        os.rename(previous, self.path)
                        raise
                else:
                    os.rename(self._staging, self.path)
                self.published = True
                with suppress(OSError):  # durability of the renames, which are done
                    _fsync_folder(self.path.parent)
        except OSError as exc:
            raise WriteError(self._failure("replacing it", exc)) from exc
        finally:  # also when a signal held back above is delivered on leaving the block
            if previous is not None and self.published:
                _remove(previous)

    def _write(self, name: str, chunks: Iterable[bytes]) -> None:
        if self._fd is None:
            raise RuntimeError("write() outside the OutputFolder's with block")
        part = f".{name}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(part, flags, 0o666, dir_fd=self._fd)
            try:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(part, name, src_dir_fd=self._fd, dst_dir_fd=self._fd)
        except OSError as exc:
            raise WriteError(self._failure(f"writing {name}", exc)) from exc

    def _carry(self) -> None:
        with FolderReader(self.path) as source:
            for name in source.names():
                with source.open(name) as handle:
                    self._write(name, iter(partial(handle.read, _CHUNK), b""))

    def _recover(self) -> None:
        """Clean up after runs killed while writing this folder (they are dead: we hold the
        lock), putting the previous folder back if one died between the two renames."""
        prefix = f".{self.path.name}.xaudit-"
        left = [p for p in self.path.parent.iterdir()
                if p.name.startswith(prefix) and p.suffix in (".incomplete", ".previous")]
        previous = [p for p in left if p.suffix == ".previous"]
        if previous and not os.path.lexists(self.path):
            restored = max(previous, key=lambda p: p.lstat().st_mtime)
            os.rename(restored, self.path)
            left.remove(restored)
        for path in left:
            _remove(path)

    def _sibling(self, kind: str) -> Path:
        return self.path.parent / f".{self.path.name}.xaudit-{secrets.token_hex(6)}.{kind}"

    def _failure(self, doing: str, exc: OSError) -> str:
        kept = ("still holds the previous complete run" if os.path.lexists(self.path)
                else "was not created")
        return (f"could not write the output folder {self.path} while {doing}: "
                f"{exc.strerror or exc}; nothing was published, so {self.path} {kept}. Free "
                "space (or choose another output folder) and run again")

    def _discard(self) -> None:
        try:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._staging is not None and not self.published:
                _remove(self._staging)
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None


class FolderReader:
    """The files of a results folder, read without following symbolic links inside it.

    The folder is opened once and every file relative to it, so all files read come from one
    folder even while a run replaces it. Raises :class:`~xaudit.errors.InputError` for a
    missing folder or file, a link, or anything but a regular file.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self._fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(f"cannot read the results folder {self.folder}: {exc.strerror}; "
                             "give a folder that `xaudit run` wrote") from None

    def __enter__(self) -> FolderReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        os.close(self._fd)

    def names(self) -> list[str]:
        """The results-folder files it holds as regular files, sorted."""
        with os.scandir(self._fd) as entries:
            return sorted(e.name for e in entries
                          if e.name in FOLDER_FILES and e.is_file(follow_symlinks=False))

    def entries(self) -> list[str]:
        """Every entry of the folder, of any kind (links and folders too), sorted."""
        with os.scandir(self._fd) as entries:
            return sorted(e.name for e in entries)

    def open(self, name: str) -> BinaryIO:
        """The regular file ``name`` of the folder, open for reading."""
        where = self.folder / name
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=self._fd)
        except FileNotFoundError:
            raise InputError(f"{self.folder} holds no {name}; give a folder that `xaudit run` "
                             "wrote") from None
        except OSError as exc:
            reason = ("is a symbolic link, and xaudit follows no link inside a results folder"
                      if exc.errno == errno.ELOOP else f"cannot be read: {exc.strerror}")
            raise InputError(f"{where} {reason}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InputError(f"{where} is not a regular file; a results folder holds files only")
        return os.fdopen(fd, "rb")


def _refuse_foreign(path: Path) -> None:
    try:
        with os.scandir(path) as entries:
            foreign = sorted(e.name for e in entries
                             if e.name not in FOLDER_FILES or e.is_dir(follow_symlinks=False))
    except OSError as exc:
        raise OutputError(f"cannot read the output folder {path}: {exc.strerror}") from None
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if foreign[5:] else "")
        raise OutputError(
            f"{path} holds {shown}, which xaudit did not write; the output folder is replaced "
            "as a whole, so give a new or empty folder, or one that xaudit wrote")


def _check_writable(path: Path) -> None:
    existing = path.parent
    while not os.path.lexists(existing):
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot create the output folder {path}: {existing} is not a folder")
    probe = existing / f".xaudit-probe-{secrets.token_hex(6)}"
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as exc:
        raise OutputError(f"cannot write the output folder {path}: {existing} is not writable "
                          f"({exc.strerror}); choose another output folder") from None


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block ends, then deliver them.

    Only the main thread can set handlers; elsewhere a signal may fall between the renames,
    and the next run into the folder puts the previous one back (:meth:`OutputFolder._recover`).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, signal.SIG_DFL if handler is None else handler)
        for number in caught:
            signal.raise_signal(number)


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    with suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
