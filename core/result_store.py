"""Where an explanation's attribution arrays are stored: in memory, or out of core in Zarr.

An attribution array of ``rows x features x outputs`` float64 values takes
:func:`estimated_bytes` of memory. Up to the suite's bound (``report.out_of_core_mb``; no
bound by default) it is saved in ``arrays.npz`` with the other arrays, which is compressed in
memory as a whole. Above it, it is written a block of rows at a time to the chunked Zarr array
``explanations/<id>/<name>`` of :data:`ZARR_FILE`, a Zarr v3 store in a zip archive (one
regular file, so the results folder stays a folder of files: written as a unit, listed in the
manifest, read without following links). ``results.json`` points to it
(:class:`StoredArray`). Dask reads it as it is::

    store = zarr.storage.ZipStore("xaudit-results/arrays.zarr.zip", mode="r")
    values = dask.array.from_zarr(zarr.open_array(store, path="explanations/tree/values"))

The seam is :class:`ResultSink`: declare an array with :meth:`~ResultSink.open_array`, hand
it row blocks in any order with :meth:`~ResultSink.write_chunk`, then
:meth:`~ResultSink.close`, which refuses an array whose rows were not all written.
:class:`MemorySink` assembles the arrays in memory; :class:`ZarrSink` writes whole Zarr chunks
as soon as their rows are complete, so it holds at most the partly written chunks.

Reading (:func:`read_stored`) treats the store as untrusted data: it is opened through the
results folder's file descriptor (no link followed), each array's metadata is checked before
Zarr decodes anything (float64, the shape ``results.json`` records, chunks of whole rows, only
the codecs in :data:`SAFE_CODECS`, so nothing is unpickled), and the values are decompressed
into an unlinked temporary file that is memory-mapped read-only, so the loaded explanation is
an ordinary numpy array whose pages the operating system brings in and evicts as needed.
``zarr`` (the ``dask`` extra) is imported only when a run writes, or a folder holds, a Zarr
array.
"""

from __future__ import annotations

import json
import math
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from .errors import InputError
from .extras import import_from_extra
from .streaming import row_blocks

if TYPE_CHECKING:
    import zarr

ZARR_FILE: Final = "arrays.zarr.zip"
"""The Zarr store of a results folder (a zip archive of Zarr v3 keys)."""
OUT_OF_CORE_NAMES = ("values", "std_errors")
"""The arrays of an explanation stored out of core when it is over the bound."""
CHUNK_BYTES = 16 << 20
"""Target size of one Zarr chunk before compression (whole rows, at least one)."""
SAFE_CODECS = frozenset({"bytes", "zstd", "blosc", "gzip", "crc32c", "transpose"})
"""Zarr v3 codecs a received store may use: they decode bytes into numbers and run no code."""
MAX_METADATA_BYTES = 1 << 20
"""Largest ``zarr.json`` of an array read from a received store."""


class StoredArray(BaseModel):
    """The pointer in ``results.json`` from an explanation's array to its Zarr array."""

    model_config = ConfigDict(strict=True, extra="forbid")

    store: Literal["arrays.zarr.zip"]
    """The store, a file of the results folder itself (never a path elsewhere)."""
    array: str
    """The array's path in the store: ``explanations/<explainer id>/<name>``."""
    shape: list[int]
    dtype: Literal["float64"]


def array_path(explainer_id: str, name: str) -> str:
    """Where the array ``name`` of the explainer ``explainer_id`` lives in the store."""
    return f"explanations/{explainer_id}/{name}"


def estimated_bytes(shape: tuple[int, ...]) -> int:
    """Memory of a float64 array of ``shape``: rows x features x outputs x 8."""
    return math.prod(shape) * 8


def out_of_core(shape: tuple[int, ...], bound_mb: float | None) -> bool:
    """Whether an attribution array of ``shape`` goes to Zarr under the bound ``bound_mb``
    (``None``: no bound, always in memory)."""
    return bound_mb is not None and estimated_bytes(shape) > bound_mb * (1 << 20)


class ResultSink(Protocol):
    """Receives attribution arrays a block of rows at a time (module docstring)."""

    def open_array(self, explainer_id: str, name: str, shape: tuple[int, ...]) -> None:
        """Declare the float64 array ``name`` of ``explainer_id`` with its full ``shape``."""

    def write_chunk(self, explainer_id: str, name: str, row_start: int,
                    array: np.ndarray) -> None:
        """Store ``array`` as the rows ``row_start:row_start + len(array)`` of the array."""

    def close(self) -> None:
        """Finish; raises :class:`ValueError` naming an array whose rows were not all written."""


class _Rows:
    """Which rows of one declared array were written; refuses overlaps and gaps."""

    def __init__(self, label: str, shape: tuple[int, ...]) -> None:
        self.label, self.shape = label, shape
        self.done = np.zeros(shape[0], dtype=bool)

    def mark(self, row_start: int, array: np.ndarray) -> slice:
        if array.shape[1:] != self.shape[1:] or row_start < 0 or \
                row_start + array.shape[0] > self.shape[0]:
            raise ValueError(f"{self.label}: a chunk shaped {array.shape} at row {row_start} "
                             f"does not fit the array shaped {self.shape}")
        rows = slice(row_start, row_start + array.shape[0])
        if self.done[rows].any():
            raise ValueError(f"{self.label}: rows {rows.start}:{rows.stop} written twice")
        self.done[rows] = True
        return rows

    def check_complete(self) -> None:
        missing = np.flatnonzero(~self.done)
        if missing.size:
            raise ValueError(f"{self.label}: {missing.size} row(s) never written, first "
                             f"row {int(missing[0])}")


class MemorySink:
    """Assembles each declared array in memory (a run that stays under the bound)."""

    def __init__(self) -> None:
        self.arrays: dict[tuple[str, str], np.ndarray] = {}
        self._rows: dict[tuple[str, str], _Rows] = {}

    def open_array(self, explainer_id: str, name: str, shape: tuple[int, ...]) -> None:
        """See :meth:`ResultSink.open_array`."""
        self.arrays[explainer_id, name] = np.empty(shape, dtype=np.float64)
        self._rows[explainer_id, name] = _Rows(array_path(explainer_id, name), shape)

    def write_chunk(self, explainer_id: str, name: str, row_start: int,
                    array: np.ndarray) -> None:
        """See :meth:`ResultSink.write_chunk`."""
        rows = self._rows[explainer_id, name].mark(row_start, array)
        self.arrays[explainer_id, name][rows] = array

    def close(self) -> None:
        """See :meth:`ResultSink.close`."""
        for rows in self._rows.values():
            rows.check_complete()


class ZarrSink:
    """Writes each declared array to the Zarr store at ``path`` (created), whole chunks at a
    time; chunks are :data:`CHUNK_BYTES` of whole rows, compressed with Zstandard."""

    def __init__(self, path: Path) -> None:
        self._zarr = _zarr_module("writing attribution arrays out of core (report.out_of_core_mb)")
        self._store = self._zarr.storage.ZipStore(path, mode="w")
        self._root = self._zarr.open_group(self._store, mode="w")
        self._arrays: dict[tuple[str, str], zarr.Array[Any]] = {}
        self._rows: dict[tuple[str, str], _Rows] = {}
        self._pending: dict[tuple[str, str], dict[int, tuple[np.ndarray, np.ndarray]]] = {}

    def open_array(self, explainer_id: str, name: str, shape: tuple[int, ...]) -> None:
        """See :meth:`ResultSink.open_array`."""
        key = (explainer_id, name)
        row_bytes = max(1, estimated_bytes(shape[1:]))
        chunk_rows = max(1, min(shape[0], CHUNK_BYTES // row_bytes))
        self._arrays[key] = self._root.create_array(
            array_path(explainer_id, name), shape=shape, dtype="float64",
            chunks=(chunk_rows, *shape[1:]), compressors=self._zarr.codecs.ZstdCodec(level=3),
            fill_value=0.0)
        self._rows[key] = _Rows(array_path(explainer_id, name), shape)
        self._pending[key] = {}

    def write_chunk(self, explainer_id: str, name: str, row_start: int,
                    array: np.ndarray) -> None:
        """See :meth:`ResultSink.write_chunk`: rows are buffered until their Zarr chunk is
        complete, so every chunk is written once (a zip archive cannot replace a member)."""
        key = (explainer_id, name)
        target, pending = self._arrays[key], self._pending[key]
        self._rows[key].mark(row_start, array)
        step, n = target.chunks[0], target.shape[0]
        position = row_start
        while position < row_start + array.shape[0]:
            index = position // step
            start, stop = index * step, min((index + 1) * step, n)
            end = min(stop, row_start + array.shape[0])
            buffer, filled = pending.setdefault(index, (
                np.empty((stop - start, *target.shape[1:])), np.zeros(stop - start, bool)))
            buffer[position - start:end - start] = array[position - row_start:end - row_start]
            filled[position - start:end - start] = True
            if filled.all():
                target[start:stop] = buffer
                del pending[index]
            position = end

    def close(self) -> None:
        """See :meth:`ResultSink.close`; closes the store (the zip's directory is written)."""
        try:
            for rows in self._rows.values():
                rows.check_complete()
        finally:
            self._store.close()


def write_out_of_core(sink: ResultSink, arrays: dict[tuple[str, str], np.ndarray]) -> None:
    """Hand each in-memory array to ``sink`` a block of rows at a time, then close it."""
    for (explainer_id, name), array in arrays.items():
        sink.open_array(explainer_id, name, tuple(array.shape))
        for rows in row_blocks(array):
            sink.write_chunk(explainer_id, name, rows.start, array[rows])
    sink.close()


def read_stored(handle: BinaryIO, where: Path,
                pointers: dict[tuple[str, str], StoredArray]) -> dict[tuple[str, str], np.ndarray]:
    """The arrays ``pointers`` name, read from the open store ``handle`` (the file ``where``)
    as read-only memory-mapped float64 arrays (module docstring).

    Raises :class:`~xaudit.errors.InputError` naming the array for a pointer that does not
    match its explanation, metadata that is not what :class:`ZarrSink` writes, and a store
    Zarr cannot read.
    """
    for (explainer_id, name), pointer in pointers.items():
        expected = array_path(explainer_id, name)
        if pointer.array != expected:
            raise InputError(f"{where}: the pointer of explanation {explainer_id!r} {name} "
                             f"names the array {pointer.array!r}; it must be {expected!r}")
    try:
        with zipfile.ZipFile(handle) as archive:
            for pointer in pointers.values():
                _check_metadata(archive, pointer, where)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(f"{where} is not a Zarr zip store: {type(exc).__name__}: {exc}") \
            from None
    zarr_module = _zarr_module(f"reading {where}")
    store = zarr_module.storage.ZipStore(f"/dev/fd/{handle.fileno()}", mode="r")
    try:
        return {key: _copied(zarr_module.open_array(store, path=pointer.array, mode="r"),
                             pointer, where)
                for key, pointer in pointers.items()}
    except InputError:
        raise
    except Exception as exc:  # zarr's errors for a corrupt chunk have no common base
        raise InputError(f"{where} cannot be read as a Zarr store: "
                         f"{type(exc).__name__}: {exc}") from None
    finally:
        store.close()


def _check_metadata(archive: zipfile.ZipFile, pointer: StoredArray, where: Path) -> None:
    """Refuse an array whose ``zarr.json`` is not a float64 array of the pointer's shape in
    chunks of whole rows, encoded with :data:`SAFE_CODECS` only."""
    label = f"{where}: array {pointer.array!r}"
    try:
        info = archive.getinfo(f"{pointer.array}/zarr.json")
    except KeyError:
        raise InputError(f"{label} is missing from the store") from None
    if info.file_size > MAX_METADATA_BYTES:
        raise InputError(f"{label} has {info.file_size} bytes of metadata; xaudit writes "
                         f"under {MAX_METADATA_BYTES}")
    try:
        meta: Any = json.loads(archive.read(info))
    except ValueError as exc:
        raise InputError(f"{label} has metadata that is not JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise InputError(f"{label} has metadata that is not a JSON object")
    grid = meta.get("chunk_grid")
    chunks = grid.get("configuration", {}).get("chunk_shape") if isinstance(grid, dict) else None
    codecs = meta.get("codecs")
    names = [c.get("name") if isinstance(c, dict) else c for c in codecs] \
        if isinstance(codecs, list) else None
    problems = [
        f"{field} is {found!r}, expected {wanted}" for field, found, wanted, ok in [
            ("zarr_format", meta.get("zarr_format"), "3", meta.get("zarr_format") == 3),
            ("node_type", meta.get("node_type"), "'array'", meta.get("node_type") == "array"),
            ("data_type", meta.get("data_type"), "'float64' (xaudit reads no object or text "
             "arrays)", meta.get("data_type") == "float64"),
            ("shape", meta.get("shape"), pointer.shape, meta.get("shape") == pointer.shape),
            ("chunk_shape", chunks, "whole rows of the array", isinstance(chunks, list)
             and len(chunks) == len(pointer.shape) and chunks[1:] == pointer.shape[1:]
             and isinstance(chunks[0], int) and chunks[0] >= 1),
            ("codecs", names, f"only {', '.join(sorted(SAFE_CODECS))}",
             isinstance(names, list) and all(n in SAFE_CODECS for n in names)),
        ] if not ok]
    if problems:
        raise InputError(f"{label} is not what xaudit writes: " + "; ".join(problems))


def scratch_array(shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """A writable array of ``shape`` backed by an unlinked temporary file (in ``TMPDIR``),
    memory-mapped: the operating system keeps in memory only the pages in use, and the file
    disappears with the array. Its entries start at zero."""
    if math.prod(shape) == 0:
        return np.zeros(shape, dtype=dtype)
    with tempfile.TemporaryFile(prefix="xaudit-out-of-core-") as scratch:
        return np.memmap(scratch, dtype=dtype, mode="w+", shape=shape)


def _copied(source: zarr.Array[Any], pointer: StoredArray, where: Path) -> np.ndarray:
    """``source`` decompressed block by block into a read-only memory-mapped temporary file."""
    target = scratch_array(tuple(pointer.shape))
    for rows in row_blocks(target):
        target[rows] = source[rows]
    target.flags.writeable = False
    return np.asarray(target)


def _zarr_module(purpose: str) -> Any:
    """``zarr`` (the ``dask`` extra), or the extra to install for ``purpose``."""
    return import_from_extra("zarr", "dask", purpose)
