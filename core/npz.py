"""Reading NPZ archives (data files and ``arrays.npz``) as data, never as code.

:func:`read_npz` loads every array with ``allow_pickle=False`` and turns what can go wrong with
a file from elsewhere into an :class:`~xaudit.errors.InputError` that says what is wrong:
numpy's own message for a file that is not a zip archive wrongly blames pickled data, and its
message for an object array says only that pickles are off.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import InputError


def read_npz(path: Path, handle: BinaryIO | None = None) -> dict[str, np.ndarray]:
    """Every array in the NPZ archive ``path``, by name; read from ``handle`` when given (the
    file ``path`` names, opened by the caller, who closes it)."""
    source = path if handle is None else handle
    if not zipfile.is_zipfile(source):
        raise InputError(f"{path} is not an NPZ archive: it is not a zip file (save arrays "
                         "with numpy.savez or numpy.savez_compressed)")
    if handle is not None:
        handle.seek(0)  # is_zipfile read the archive's end
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(source, allow_pickle=False) as archive:
            for name in archive.files:
                try:
                    arrays[name] = archive[name]
                except ValueError as exc:
                    if "allow_pickle" not in str(exc):
                        raise
                    raise InputError(
                        f"{path}: array {name!r} holds Python objects (dtype object), which "
                        "xaudit does not read because loading them runs pickle; save it "
                        "with a numeric or string dtype") from None
    except InputError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path} cannot be read as an NPZ archive: "
                         f"{type(exc).__name__}: {exc}") from None
    return arrays
