"""``manifest.json``: the SHA-256 of every file a run wrote, written last, optionally signed.

A results folder is evidence: an auditor must be able to tell that ``results.json``, the
report and the arrays are the ones the run wrote. Every write of a results folder
(``xaudit run``, ``xaudit report``, :func:`xaudit.render`) ends with :func:`write_manifest`;
``xaudit verify`` (:mod:`xaudit.verify`) recomputes the digests. With an Ed25519 key
(:mod:`xaudit.signing`) ``manifest.sig`` holds a signature over the manifest's bytes, so an
edit that also rewrites the manifest is caught too.

The manifest lists files by their path relative to the folder (POSIX separators), sorted::

    {"manifest_version": 1, "algorithm": "sha256",
     "files": {"arrays.npz": "9f2c...", "results.json": "41ab...", ...},
     "signed_by": "ed25519:3c9a..."}            # only when signed

``manifest.json`` and ``manifest.sig`` are the only files of the folder it does not list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import InputError

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
MANIFEST_VERSION = 1
UNLISTED = (MANIFEST_FILE, SIGNATURE_FILE)
"""The files of a results folder the manifest does not list (itself and its signature)."""


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(out_dir: Path, written: Iterable[Path], *, sign_key: Path | None = None,
                   extend: bool = False) -> list[Path]:
    """Write ``manifest.json`` (and ``manifest.sig`` with ``sign_key``) into ``out_dir``.

    ``written`` are the files just written (inside ``out_dir``). With ``extend`` the entries
    of the folder's previous manifest for files not written now are carried over as they were
    (their recorded digests, not recomputed ones, so a file edited since is still caught); a
    re-render into a run's folder keeps the run's other files listed. A stale ``manifest.sig``
    is removed when no key is given, since it no longer matches. Returns the files written.
    """
    out_dir = Path(out_dir)
    files: dict[str, str] = {}
    if extend:
        previous = _previous_entries(out_dir)
        files.update({name: digest for name, digest in previous.items()
                      if (out_dir / name).is_file()})
    for path in written:
        name = Path(path).resolve().relative_to(out_dir.resolve()).as_posix()
        if name not in UNLISTED:
            files[name] = file_sha256(Path(path))
    document: dict[str, Any] = {"manifest_version": MANIFEST_VERSION, "algorithm": "sha256",
                                "files": dict(sorted(files.items()))}
    private = None
    if sign_key is not None:
        from .signing import load_private_key, public_fingerprint

        private = load_private_key(sign_key)
        document["signed_by"] = public_fingerprint(private.public_key())
    manifest = out_dir / MANIFEST_FILE
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    manifest.write_bytes(data)
    signature = out_dir / SIGNATURE_FILE
    if private is None:
        signature.unlink(missing_ok=True)
        return [manifest]
    from .signing import sign

    signature.write_text(sign(private, data) + "\n")
    return [manifest, signature]


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's manifest, checked for shape; :class:`InputError` when missing or
    malformed (naming what is wrong)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise InputError(f"{folder} holds no {MANIFEST_FILE}; only a folder that xaudit "
                         "wrote (run, report or render) can be verified")
    try:
        document = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("manifest_version") != MANIFEST_VERSION:
        version = document.get("manifest_version") if isinstance(document, dict) else None
        raise InputError(f"{path} has manifest version {version!r}; this xaudit reads version "
                         f"{MANIFEST_VERSION}")
    files = document.get("files")
    if document.get("algorithm") != "sha256" or not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise InputError(f"{path} must map file names to SHA-256 digests under 'files', with "
                         "'algorithm': 'sha256'")
    return document


def _previous_entries(folder: Path) -> dict[str, str]:
    try:
        files: dict[str, str] = read_manifest(folder)["files"]
    except InputError:
        return {}
    return files
