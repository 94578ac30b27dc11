"""Progress of a run: which explainer or check is running, rows done and time left.

The runner (or ``explain(..., progress=True)``) opens a :class:`Progress` and starts one task
per explainer or check; an explainer that works through its rows in groups reports each group
with :func:`rows_done`, which finds the open task through a context variable (a no-op when no
progress is shown, so plugins call it unconditionally). In a terminal one status line is
rewritten in place (``[explainer 2/3] kernelshap (shap.kernel): 12/40 rows, 3.1 s, ETA 7 s``);
elsewhere (CI logs) a plain line is written when a task starts and ends and at most every
``interval`` seconds in between, so a long run never looks hung.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TextIO

from .safe_text import one_line

_ACTIVE: ContextVar[Progress | None] = ContextVar("xaudit_progress", default=None)


def rows_done(rows: int) -> None:
    """Report that ``rows`` more rows of the running task are finished (no-op without one)."""
    progress = _ACTIVE.get()
    if progress is not None:
        progress.advance(rows)


@contextmanager
def rows_hidden() -> Iterator[None]:
    """Ignore :func:`rows_done` inside the block: an executor reports a chunk's rows itself when
    the chunk ends, in this process or on a worker."""
    token = _ACTIVE.set(None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


@dataclass
class Progress:
    """Status lines on ``stream`` (stderr by default); ``tty`` ``None``: ask the stream."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    tty: bool | None = None
    interval: float = 5.0
    clock: Callable[[], float] = time.monotonic
    label: str = ""
    total: int = 0
    done: int = 0
    started: float = 0.0
    last_line: float = 0.0

    def __post_init__(self) -> None:
        if self.tty is None:
            isatty = getattr(self.stream, "isatty", None)
            self.tty = bool(isatty and isatty())

    @contextmanager
    def task(self, label: str, total_rows: int) -> Iterator[None]:
        """Show ``label`` while the block runs; rows reported by :func:`rows_done` count
        against ``total_rows``. The task's end line gives its wall time."""
        self.label, self.total, self.done = label, total_rows, 0
        self.started = self.last_line = self._now()
        token = _ACTIVE.set(self)
        self._write(f"{label}: started ({total_rows} rows)", final=not self.tty)
        try:
            yield
        finally:
            _ACTIVE.reset(token)
            self._write(f"{label}: done in {self._now() - self.started:.1f} s", final=True)

    def advance(self, rows: int) -> None:
        """Count ``rows`` more rows done and show the status when it is due."""
        self.done = min(self.total, self.done + int(rows))
        now = self._now()
        if self.tty or now - self.last_line >= self.interval:
            self.last_line = now
            self._write(self.status(now), final=not self.tty)

    def status(self, now: float) -> str:
        """``label: done/total rows, elapsed, ETA`` (the ETA from the rows' mean pace)."""
        elapsed = now - self.started
        text = f"{self.label}: {self.done}/{self.total} rows, {elapsed:.1f} s"
        if 0 < self.done < self.total:
            text += f", ETA {elapsed / self.done * (self.total - self.done):.0f} s"
        return text

    def _now(self) -> float:
        return float(self.clock())

    def _write(self, text: str, final: bool) -> None:
        text = one_line(text)  # ids and method names from the suite cannot forge lines
        if self.tty:
            self.stream.write(f"\r\033[K{text}" + ("\n" if final else ""))
        else:
            self.stream.write(f"xaudit: {text}\n")
        self.stream.flush()
