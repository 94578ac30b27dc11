"""What a check's run costs: model calls, re-explanations and wall time, for its details."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from xaudit.model import Model


def calls_of(model: Model) -> int:
    """Model calls counted so far by the counting proxy :func:`xaudit.check` passes."""
    return int(getattr(model, "calls", 0))


class Cost:
    """Records a check's model calls, re-explanations and wall time for its details."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.start_calls = calls_of(model)
        self.started = time.perf_counter()
        self.reexplained_rows = 0
        self.reexplain_calls = 0

    def reexplain(self, fn: Callable[..., np.ndarray], X: np.ndarray, *args: Any,
                  **kwargs: Any) -> np.ndarray:
        """Call ``fn(X, ...)`` and count it as one re-explanation of ``len(X)`` rows."""
        self.reexplain_calls += 1
        self.reexplained_rows += int(X.shape[0])
        return fn(X, *args, **kwargs)

    def details(self) -> dict[str, Any]:
        """``model_calls``, ``reexplain_calls``, ``reexplained_rows``, ``wall_time_s``."""
        return {"model_calls": calls_of(self.model) - self.start_calls,
                "reexplain_calls": self.reexplain_calls,
                "reexplained_rows": self.reexplained_rows,
                "wall_time_s": time.perf_counter() - self.started}
