"""Key ids are RFC 7638 thumbprints, the JWKS is a standard document, development keys are made once."""

import os
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from common.keys import ensure_dev_keypair, generate_keypair, key_id, load_public_key, public_jwk
from common.testing import test_keys

# RFC 7638, section 3.1: this key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknj"
    "hMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQ"
    "vRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzK"
    "nqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _uint(b64: str) -> int:
    import base64

    return int.from_bytes(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)), "big")


def test_the_kid_is_the_rfc7638_thumbprint():
    key = rsa.RSAPublicNumbers(e=65537, n=_uint(RFC7638_N)).public_key()

    assert key_id(key) == RFC7638_THUMBPRINT


def test_the_kid_is_stable_and_the_same_from_the_private_or_public_pem():
    from_public = load_public_key(test_keys.public_path.read_bytes())
    from_private = load_public_key(test_keys.private_path.read_text())

    assert key_id(from_public) == key_id(from_private) == key_id(load_public_key(test_keys.public_path.read_bytes()))
    assert key_id(from_public) == test_keys.kid


def test_different_keys_have_different_kids(tmp_path):
    _, other_public = generate_keypair(tmp_path / "other")

    assert key_id(load_public_key(other_public.read_bytes())) != test_keys.kid


def test_the_jwk_is_a_public_rsa_signing_key_and_nothing_more():
    jwk = public_jwk(load_public_key(test_keys.public_path.read_bytes()))

    assert set(jwk) == {"kty", "n", "e", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["e"], jwk["use"], jwk["alg"]) == ("RSA", "AQAB", "sig", "RS256")
    assert "=" not in jwk["n"]


def test_a_standard_library_verifies_our_tokens_from_the_jwks_alone():
    document = {"keys": [public_jwk(load_public_key(test_keys.public_path.read_bytes()))]}
    token = test_keys.mint(user_id=4, role="customer")

    key = jwt.PyJWKSet.from_dict(document)[jwt.get_unverified_header(token)["kid"]]
    decoded = jwt.decode(token, key.key, algorithms=["RS256"], audience="lms", issuer="lms-user-service")

    assert decoded["user_id"] == 4


def test_a_new_private_key_is_readable_by_its_owner_only(tmp_path):
    private_path, public_path = generate_keypair(tmp_path / "keys")

    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert b"BEGIN PUBLIC KEY" in public_path.read_bytes()


def test_development_keys_are_made_once_and_then_reused(tmp_path):
    first = ensure_dev_keypair(tmp_path / "dev")
    kid = key_id(load_public_key(first[1].read_bytes()))

    second = ensure_dev_keypair(tmp_path / "dev")

    assert second == first
    assert key_id(load_public_key(second[1].read_bytes())) == kid


def test_a_file_that_is_not_a_key_is_refused():
    with pytest.raises(ValueError):  # noqa: PT011 - cryptography's own error type
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")


@pytest.fixture
def no_chmod(monkeypatch):
    """Whatever mode a file gets must come from its creation: later chmod calls do nothing, and umask takes nothing."""
    monkeypatch.setattr(Path, "chmod", lambda self, mode, **kwargs: None)
    monkeypatch.setattr(os, "chmod", lambda path, mode, **kwargs: None)
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_the_private_key_is_created_owner_only_never_readable_by_others_first(tmp_path, no_chmod):
    private_path, _ = generate_keypair(tmp_path / "keys")

    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600


def test_regenerating_over_a_readable_old_key_leaves_it_owner_only(tmp_path, no_chmod):
    (tmp_path / "keys").mkdir()
    old = tmp_path / "keys" / "jwt_private.pem"
    old.write_bytes(b"old")
    assert stat.S_IMODE(old.stat().st_mode) == 0o666  # umask 0: readable and writable by anyone

    private_path, _ = generate_keypair(tmp_path / "keys")

    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private_path.read_bytes()
    assert [path.name for path in (tmp_path / "keys").iterdir() if path.name.endswith(".tmp")] == []


def test_a_missing_public_key_is_derived_from_the_private_key_which_is_kept(tmp_path):
    private_path, public_path = ensure_dev_keypair(tmp_path / "dev")
    private_pem = private_path.read_bytes()
    public_path.unlink()

    again = ensure_dev_keypair(tmp_path / "dev")

    assert again == (private_path, public_path)
    assert private_path.read_bytes() == private_pem  # tokens it signed still verify
    assert key_id(load_public_key(public_path.read_bytes())) == key_id(load_public_key(private_pem))


def test_a_missing_private_key_means_a_new_pair(tmp_path):
    private_path, public_path = ensure_dev_keypair(tmp_path / "dev")
    old_kid = key_id(load_public_key(public_path.read_bytes()))
    private_path.unlink()

    ensure_dev_keypair(tmp_path / "dev")

    assert key_id(load_public_key(public_path.read_bytes())) != old_kid
    assert key_id(load_public_key(private_path.read_bytes())) == key_id(load_public_key(public_path.read_bytes()))
