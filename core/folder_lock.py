"""An exclusive lock on an output folder, held by one xaudit process at a time.

The lock is an OS-level advisory lock (``flock``) on a lock file beside the folder
(``.NAME.xaudit.lock``). The kernel drops it when its holder exits, however it exits, so the lock
of a killed run is never stale: the next run takes it. The file names its holder (process id,
host, start time, command) for the message a second run gets. The holder removes the file
before unlocking; a process that locked a file another holder just removed sees that the path
no longer names its file and starts again, so two processes never both hold "the" lock.

POSIX only (``fcntl``), imported when a lock is taken so that ``import xaudit`` works anywhere.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from .errors import OutputError


class FolderLock:
    """The lock of ``folder``: :meth:`acquire` fails at once when another process holds it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder.parent / f".{folder.name}.xaudit.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`OutputError` naming the process that holds it."""
        import fcntl

        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        while True:
            try:
                fd = os.open(self.path, flags, 0o666)
            except OSError as exc:
                raise OutputError(f"cannot create the lock file {self.path} of {self.folder}: "
                                  f"{exc.strerror}; choose another output folder") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                raise OutputError(
                    f"{self.folder} is being written by another xaudit run ({holder}); wait "
                    "for it to finish, or give this run another output folder") from None
            except OSError as exc:
                os.close(fd)
                raise OutputError(f"cannot lock {self.path} ({exc.strerror}); the output "
                                  "folder must be on a file system with flock") from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # its holder removed it after we opened it: lock the new one
        since = datetime.now(UTC).isoformat(timespec="seconds")
        holder = f"pid {os.getpid()} on {socket.gethostname()} since {since}: {' '.join(sys.argv)}"
        os.ftruncate(fd, 0)
        os.write(fd, holder.encode("utf-8"))
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and unlock (in that order, see the module docstring)."""
        if self._fd is None:
            return
        try:
            if _same_file(self._fd, self.path):
                os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
