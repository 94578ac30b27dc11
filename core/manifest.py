"""``manifest.json``: the SHA-256 of every file a run wrote, written last, optionally signed.

A results folder is evidence: an auditor must be able to tell that ``results.json``, the
report and the arrays are the ones the run wrote. Every write of a results folder
(``xaudit run``, ``xaudit report``, :func:`xaudit.render`) ends with :func:`write_manifest`,
just before the folder is published (:mod:`xaudit.output_folder`);
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
from pathlib import Path
from typing import Any

from .errors import InputError
from .output_folder import FolderReader, OutputFolder

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


def write_manifest(folder: OutputFolder, *, sign_key: Path | None = None) -> list[Path]:
    """Write ``manifest.json`` (and ``manifest.sig`` with ``sign_key``) into the open ``folder``.

    It lists every file ``folder`` wrote, with the digest of the bytes written
    (:attr:`~xaudit.output_folder.OutputFolder.written`). A folder that carries the files it
    held (``keep``: a report re-rendered in place) also lists the carried files, with the
    digests its previous manifest recorded, not recomputed ones, so a file edited since is
    still caught; a carried ``manifest.sig`` is dropped when no key is given, since it no
    longer matches. Returns the files written.
    """
    files: dict[str, str] = {}
    if folder.keep:
        files.update(_previous_entries(folder.path))
    files.update({name: digest for name, digest in folder.written.items()
                  if name not in UNLISTED})
    document: dict[str, Any] = {"manifest_version": MANIFEST_VERSION, "algorithm": "sha256",
                                "files": dict(sorted(files.items()))}
    private = None
    if sign_key is not None:
        from .signing import load_private_key, public_fingerprint

        private = load_private_key(sign_key)
        document["signed_by"] = public_fingerprint(private.public_key())
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    written = [folder.write(MANIFEST_FILE, data)]
    if private is None:
        folder.remove(SIGNATURE_FILE)
        return written
    from .signing import sign

    return [*written, folder.write(SIGNATURE_FILE, (sign(private, data) + "\n").encode())]


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's manifest, checked for shape; :class:`InputError` when missing, a link or
    malformed (naming what is wrong)."""
    path = Path(folder) / MANIFEST_FILE
    with FolderReader(folder) as reader, reader.open(MANIFEST_FILE) as handle:
        raw = handle.read()
    try:
        document = json.loads(raw)
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
    """The previous manifest's entries for the files ``folder`` still holds (none when it has
    no readable manifest)."""
    try:
        files: dict[str, str] = read_manifest(folder)["files"]
        with FolderReader(folder) as reader:
            held = set(reader.names())
    except InputError:
        return {}
    return {name: digest for name, digest in files.items() if name in held}
