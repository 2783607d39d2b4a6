"""RSA key handling: the JWK form of a public key, its thumbprint `kid`, and development keys."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PRIVATE_KEY_FILE = "jwt_private.pem"
PUBLIC_KEY_FILE = "jwt_public.pem"

logger = logging.getLogger("lms.keys")


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def load_public_key(pem: bytes | str) -> rsa.RSAPublicKey:
    """A PEM public key (or the public half of a PEM private key)."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


def read_public_key(path: str | Path) -> rsa.RSAPublicKey | None:
    """The key in a PEM file, or None with a logged warning when the file is missing or holds no usable key."""
    try:
        return load_public_key(Path(path).read_bytes())
    except OSError as exc:
        logger.warning("public key file skipped: %s", exc.strerror, extra={"path": str(path)})
    except (ValueError, TypeError):
        logger.warning("public key file skipped: not an unencrypted PEM key", extra={"path": str(path)})
    return None


def read_public_keys(paths: Iterable[str | Path]) -> dict[str, rsa.RSAPublicKey]:
    """The keys in these PEM files by `kid`; a missing or broken file is skipped (and logged), not fatal:
    another source may still provide the key, and a token nobody can verify is a 401, never a 500 on every request.
    """
    keys = {}
    for path in paths:
        public_key = read_public_key(path)
        if public_key is not None:
            keys[key_id(public_key)] = public_key
    return keys


def public_jwk(public_key: rsa.RSAPublicKey) -> dict[str, str]:
    """The RFC 7517 JWK of an RSA public key, `kid` being its RFC 7638 thumbprint."""
    numbers = public_key.public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**members, "kid": kid, "use": "sig", "alg": "RS256"}


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """The `kid` of a public key: its JWK thumbprint, so signer and verifiers agree without sharing state."""
    return public_jwk(public_key)["kid"]


def generate_keypair(directory: Path, *, bits: int = 2048) -> tuple[Path, Path]:
    """Write a new RSA key pair as PEM files (the private one readable by its owner only, from the start)."""
    directory.mkdir(parents=True, exist_ok=True)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_path = directory / PRIVATE_KEY_FILE
    public_path = directory / PUBLIC_KEY_FILE
    _write_owner_only(
        private_path,
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    _write_public_key(public_path, private_key.public_key())
    return private_path, public_path


def _write_owner_only(path: Path, data: bytes) -> None:
    # Created with mode 0600 rather than chmod-ed after writing, which leaves a moment when
    # others may read it; through a new file and a rename, because opening an existing file
    # would keep whatever mode it had.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_public_key(path: Path, public_key: rsa.RSAPublicKey) -> None:
    path.write_bytes(
        public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def ensure_dev_keypair(directory: Path) -> tuple[Path, Path]:
    """The development key pair under `directory`, created on first use.

    A missing public file is derived from the private key: replacing the private key
    would silently invalidate every token it signed.
    """
    private_path = directory / PRIVATE_KEY_FILE
    public_path = directory / PUBLIC_KEY_FILE
    if not private_path.exists():
        return generate_keypair(directory)
    if not public_path.exists():
        _write_public_key(public_path, load_public_key(private_path.read_bytes()))
    return private_path, public_path


if __name__ == "__main__":  # python -m common.keys DIR
    import sys

    for written in ensure_dev_keypair(Path(sys.argv[1])):
        print(written)
