"""RSA key handling: the JWK form of a public key, its thumbprint `kid`, and development keys."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PRIVATE_KEY_FILE = "jwt_private.pem"
PUBLIC_KEY_FILE = "jwt_public.pem"


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def load_public_key(pem: bytes | str) -> rsa.RSAPublicKey:
    """A PEM public key (or the public half of a PEM private key)."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


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
    """Write a new RSA key pair as PEM files (private one readable by the owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_path = directory / PRIVATE_KEY_FILE
    public_path = directory / PUBLIC_KEY_FILE
    private_path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def ensure_dev_keypair(directory: Path) -> tuple[Path, Path]:
    """The development key pair under `directory`, created on first use."""
    private_path = directory / PRIVATE_KEY_FILE
    public_path = directory / PUBLIC_KEY_FILE
    if private_path.exists() and public_path.exists():
        return private_path, public_path
    return generate_keypair(directory)


if __name__ == "__main__":  # python -m common.keys DIR
    import sys

    for written in ensure_dev_keypair(Path(sys.argv[1])):
        print(written)
