"""The explanation cache (``--cache DIR``, ``XAUDIT_CACHE``): reuse what nothing has changed.

An explainer's result is reused when everything that decides its numbers is unchanged: the
model's fingerprint, the explained rows and the background (and their labels, for a method
that reads labels), the rows' index labels, the feature and output names, the method (for
``method: auto``, the one its rule chooses for the model, :mod:`xaudit.auto`), its validated
parameters, the seed, the targets, the versions of xaudit, of the plugin that registered the
method (and the SHA-256 of the plugin's source file, so an edited plugin is not served stale
numbers) and of the numerical packages provenance tracks. These components are the entry's key
(:class:`CacheKey`); its SHA-256 names the entry.

An entry is a folder ``<DIR>/<2 hex>/<SHA-256>/`` holding ``entry.json`` (the key, the
explanation's record, the SHA-256 of the arrays file and of the entry itself) and
``arrays.npz`` (read with ``allow_pickle=False``; nothing in the cache is ever unpickled). A
reused entry must pass every check: readable, this format version, the same key, both digests,
no object arrays, a valid explanation. Anything else is a corrupted or foreign entry: it is
ignored with a :class:`CacheWarning`, recomputed and replaced, never trusted. Entries are
written into a temporary folder and renamed into place, so runs sharing a cache never see a
half-written entry and never corrupt each other's.

The digests catch accidents (a truncated copy, a disk error, an entry from another key or
format, a hand edit); they are not a defence against someone with write access to the cache
who recomputes them, just as such a person could replace the model. Share a cache only with
runs you trust, and sign results (``--sign-key``) to show who wrote them.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .explanation import Explanation
from .host import Host
from .manifest import file_sha256
from .model import Model, sha256_of_arrays
from .provenance import package_versions
from .results import from_json, to_json
from .rowindex import RowIndex
from .version import __version__

CACHE_ENV = "XAUDIT_CACHE"
"""Environment variable naming the cache folder when ``--cache`` is not given."""
ENTRY_VERSION = 1
ENTRY_FILE = "entry.json"
ARRAYS_FILE = "arrays.npz"


class CacheWarning(UserWarning):
    """A cache entry was ignored: corrupted, foreign or unreadable. It is recomputed."""


@dataclass(frozen=True)
class CacheKey:
    """What decides an explainer's numbers (JSON-ready ``components``) and its SHA-256."""

    components: dict[str, Any]
    digest: str


def explanation_key(host: Host, model: Model, rows: np.ndarray, background: np.ndarray | None,
                    labels: np.ndarray | None, feature_names: Sequence[str], method: str,
                    params: dict[str, Any], target: Any, seed: int, *,
                    row_index: RowIndex | None = None, requested: str | None = None,
                    chunk_rows: int | None = None) -> CacheKey:
    """The key of explaining ``rows`` of ``model`` with ``method``: see the module docstring.

    ``labels`` count only for a method that reads labels (``needs_labels``). ``row_index``
    (the rows' labels, which the explanation keeps) and ``requested`` (the method the suite
    named, ``"auto"`` for one chosen by rule; ``method`` is then the chosen one) are part of
    the key too, and so is ``chunk_rows`` (the executor's chunks, which fix the random
    streams) for a row-parallel method explained in chunks.
    """
    cls = host.explainers.get(method)
    origin = host.explainers.origin(method)
    data = [np.asarray(rows)]
    tags = ["background:none" if background is None else "background"]
    if background is not None:
        data.append(np.asarray(background))
    if cls.needs_labels and labels is not None:
        data.append(np.asarray(labels))
        tags.append("labels")
    raw = {
        "entry_version": ENTRY_VERSION,
        "xaudit_version": __version__,
        "plugin": {"name": origin.name, "distribution": origin.distribution,
                   "version": origin.version},
        "plugin_source_sha256": _source_sha256(cls),
        "packages": package_versions(),
        "model_sha256": model.fingerprint(),
        "data_sha256": sha256_of_arrays(*data, extra=",".join(tags)),
        "feature_names": list(feature_names),
        "output_names": list(model.output_names),
        "method": method,
        "requested_method": requested or method,
        "row_index_sha256": "" if row_index is None else hashlib.sha256(json.dumps(
            row_index.to_record(), sort_keys=True, default=str).encode()).hexdigest(),
        "params": host.explainer(method, params).params.model_dump(mode="json"),
        "target": target,
        "seed": seed,
        **({"chunk_rows": chunk_rows} if chunk_rows is not None and cls.row_parallel else {}),
    }
    components = from_json(to_json(raw))  # exactly what entry.json will hold
    canonical = json.dumps(components, sort_keys=True, separators=(",", ":"))
    return CacheKey(components, hashlib.sha256(canonical.encode()).hexdigest())


def _source_sha256(cls: type) -> str:
    try:
        return file_sha256(Path(inspect.getfile(cls)))
    except (OSError, TypeError):
        return ""


class ExplanationCache:
    """A folder of explanations, keyed by :class:`CacheKey`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"cache {self.folder} is a file; give a folder (it is created "
                             "if missing)")

    def explain(self, key: CacheKey,
                compute: Callable[[], Explanation]) -> tuple[Explanation, dict[str, Any]]:
        """The cached explanation for ``key``, else ``compute()`` stored under ``key``.

        Returns the explanation and its provenance record: ``hit``, ``key`` (the digest),
        ``stored`` (a computed one was written) and ``seconds`` (the whole lookup, computation
        and store).
        """
        started = time.perf_counter()
        found = self.get(key)
        if found is not None:
            return found, {"hit": True, "key": key.digest, "stored": False,
                           "seconds": time.perf_counter() - started}
        computed = compute()
        stored = self.put(key, computed)
        return computed, {"hit": False, "key": key.digest, "stored": stored,
                          "seconds": time.perf_counter() - started}

    def path(self, key: CacheKey) -> Path:
        """The folder of ``key``'s entry."""
        return self.folder / key.digest[:2] / key.digest

    def get(self, key: CacheKey) -> Explanation | None:
        """The entry's explanation, ``None`` when absent; a bad entry warns and gives ``None``."""
        folder = self.path(key)
        if not folder.is_dir():
            return None
        try:
            explanation = _read_entry(folder, key)
        except _BadEntry as exc:
            warnings.warn(CacheWarning(f"ignoring cache entry {folder}: {exc}; recomputing "
                                       f"{key.components.get('method')}"), stacklevel=2)
            return None
        return explanation

    def put(self, key: CacheKey, explanation: Explanation) -> bool:
        """Store ``explanation`` under ``key`` (replacing a bad entry); whether it was stored.

        Explanations holding object arrays are not stored: they could only be read back by
        unpickling, and mixed-type rows (``inputs`` of object dtype, categorical data) are
        saved as text, which would not give back the rows the checks re-explain. A cache that
        cannot be written warns; the run goes on without it.
        """
        if explanation.inputs.dtype.hasobject:
            return False
        record, arrays = explanation.to_record()
        if any(np.asarray(a).dtype.hasobject for a in arrays.values()):
            return False
        temporary = self.folder / f".tmp-{uuid.uuid4().hex}"
        try:
            temporary.mkdir(parents=True)
            with (temporary / ARRAYS_FILE).open("wb") as handle:
                np.savez(handle, **arrays)  # type: ignore[arg-type]
            entry = {"entry_version": ENTRY_VERSION, "digest": key.digest,
                     "key": key.components, "explanation": record,
                     "arrays_sha256": file_sha256(temporary / ARRAYS_FILE)}
            entry["entry_sha256"] = _entry_sha256(entry)
            (temporary / ENTRY_FILE).write_text(to_json(entry))
            return _move_into_place(temporary, self.path(key), key)
        except (OSError, TypeError, ValueError) as exc:
            warnings.warn(CacheWarning(f"could not store {key.components.get('method')} in the "
                                       f"cache {self.folder}: {exc}"), stacklevel=2)
            return False
        finally:
            shutil.rmtree(temporary, ignore_errors=True)


class _BadEntry(Exception):
    """Why an entry cannot be trusted."""


def _entry_sha256(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "entry_sha256"}
    canonical = json.dumps(from_json(to_json(body)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _read_entry(folder: Path, key: CacheKey) -> Explanation:
    try:
        entry = from_json((folder / ENTRY_FILE).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _BadEntry(f"{ENTRY_FILE} is unreadable ({exc})") from None
    if not isinstance(entry, dict) or entry.get("entry_version") != ENTRY_VERSION:
        version = entry.get("entry_version") if isinstance(entry, dict) else None
        raise _BadEntry(f"format version {version!r}, expected {ENTRY_VERSION}")
    if entry.get("digest") != key.digest or entry.get("key") != key.components:
        raise _BadEntry("it belongs to another key (a foreign or misplaced entry)")
    if entry.get("entry_sha256") != _entry_sha256(entry):
        raise _BadEntry(f"{ENTRY_FILE} was edited after it was written (digest mismatch)")
    arrays_path = folder / ARRAYS_FILE
    try:
        if file_sha256(arrays_path) != entry.get("arrays_sha256"):
            raise _BadEntry(f"{ARRAYS_FILE} is missing or changed (digest mismatch)")
    except OSError:
        raise _BadEntry(f"{ARRAYS_FILE} is missing or changed (unreadable)") from None
    try:
        with np.load(arrays_path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise _BadEntry(f"{ARRAYS_FILE} cannot be read without unpickling ({exc})") from None
    try:
        return Explanation.from_record(entry["explanation"], arrays)
    except (InputError, KeyError, TypeError, ValueError) as exc:
        raise _BadEntry(f"the stored explanation is malformed ({exc})") from None


def _move_into_place(temporary: Path, final: Path, key: CacheKey) -> bool:
    """Rename ``temporary`` to ``final``. A good entry there stays (another run stored the
    same numbers first, and readers may be reading it); a bad one is moved aside first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        try:
            _read_entry(final, key)
            return False
        except _BadEntry:
            pass
        aside = final.parent / f".old-{uuid.uuid4().hex}"
        try:
            os.rename(final, aside)
        except OSError:
            return False
        shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(temporary, final)
    except OSError:
        return False
    return True
