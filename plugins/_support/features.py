"""Features named by the user: names or indices resolved against a model's inputs.

Parameters such as ``pdp``'s ``features`` or ``counterfactual``'s ``immutable`` take features
by name (``"age"``) or by index (``3``, ``-1``); :func:`resolve_features` turns them into
indices with one error message listing the known names.
"""

from __future__ import annotations

from xaudit.errors import InputError


def resolve_features(items: list[str | int], names: tuple[str, ...] | None, d: int,
                     what: str = "feature") -> list[int]:
    """Feature indices for names or indices (``x0 .. x{d-1}`` name the features of a model
    without names), or an error naming ``what`` was asked for and listing the known names."""
    known = list(names or (f"x{i}" for i in range(d)))
    found = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            if not -d <= item < d:
                raise InputError(f"{what} index {item} is out of range for {d} features")
            found.append(item % d)
        elif item in known:
            found.append(known.index(item))
        else:
            raise InputError(f"unknown {what} {item!r}; features are {', '.join(known)}")
    return found
