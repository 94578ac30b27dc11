"""Checks run on a model before any explainer: does it accept the data, and is it stable?"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .model import Model

PROBE_ROWS = 8


def probe_model(model: Model, X: np.ndarray) -> None:
    """Refuse a model that cannot take ``X`` or answers the same rows differently twice.

    Raises :class:`InputError` naming the problem: a feature-count or shape mismatch between
    the data and the model, a model that raises on the first rows (naming the error),
    non-finite outputs, or outputs that change between two calls on
    the same rows (dropout left active, an unseeded sampler), which would make every
    explanation irreproducible.
    """
    expected = tuple(model.input_spec.feature_shape)
    got = tuple(np.shape(X)[1:])
    if expected and got != expected:
        n_expected, n_got = int(np.prod(expected)), int(np.prod(got))
        what = (f"{n_got} features but the model expects {n_expected}"
                if len(expected) == 1 and len(got) == 1 else
                f"rows shaped {got} but the model expects {expected}")
        raise InputError(f"the data has {what} (model {model.name!r}); select the model's "
                         "features with data.features, in the order it was trained on")
    rows = np.asarray(X)[:PROBE_ROWS]
    try:
        first = model.predict(rows)
        second = model.predict(rows)
    except Exception as exc:
        raise InputError(f"model {model.name!r} raised {type(exc).__name__} on the explained "
                         f"rows: {exc}; check that the data and the model belong together "
                         "(features, their order and their types)") from exc
    # A tolerance, not equality: GPU kernels may reorder sums between calls.
    if not np.allclose(first, second, rtol=1e-5, atol=1e-6):
        gap = float(np.max(np.abs(first - second)))
        raise InputError(
            f"model {model.name!r} gave different outputs for the same rows on two calls "
            f"(max difference {gap:.3g}); explanations of it would not be reproducible. "
            "Put it in inference mode (no dropout, no sampling) or fix its random state"
        )
