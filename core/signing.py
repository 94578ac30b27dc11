"""Ed25519 signatures over a results folder's ``manifest.json`` (the ``sign`` extra).

Ed25519 (Bernstein et al. 2012, "High-speed high-security signatures"; RFC 8032) signs the
manifest's bytes with a private key only its holder has; anyone with the public key checks that
the manifest, and so every file whose digest it lists, is the one the key holder's run wrote.
Keys are PEM files: the private key PKCS#8, unencrypted, created with owner-only permissions;
the public key SubjectPublicKeyInfo. The signature is stored base64-encoded in
``manifest.sig``. The cryptography package does the mathematics.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError
from .extras import require_extra

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )



def _require() -> None:
    """Refuse with the ``sign`` extra to install when the cryptography package is missing."""
    require_extra("sign", "signing and checking signatures")


def generate_keypair(private_path: Path) -> tuple[Path, Path]:
    """Create an Ed25519 key pair: ``private_path`` (mode 0600) and ``<private_path>.pub``.

    Refuses to overwrite either file.
    """
    _require()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise InputError(f"{path} exists; choose another name or remove it first")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path``; :class:`InputError` otherwise."""
    _require()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path} is not an unencrypted PEM private key ({exc}); create one "
                         "with `xaudit keygen`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path} holds a {type(key).__name__}, not an Ed25519 key; create one "
                         "with `xaudit keygen`")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file ``path``; :class:`InputError` otherwise."""
    _require()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise InputError(f"{path} is not a PEM public key ({exc}); give the .pub file "
                         "`xaudit keygen` wrote") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
    return key


def public_fingerprint(key: Ed25519PublicKey) -> str:
    """``ed25519:`` and the SHA-256 of the raw 32-byte public key, to name a key in outputs."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"ed25519:{hashlib.sha256(raw).hexdigest()}"


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    """The base64 signature of ``data`` by ``key``."""
    return base64.b64encode(key.sign(data)).decode("ascii")


def signature_valid(key: Ed25519PublicKey, data: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64, as :func:`sign` writes it) signs ``data`` under ``key``."""
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(base64.b64decode(signature.strip(), validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
