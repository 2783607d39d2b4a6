"""Verifying user_service's tokens with public keys only: RS256 pinned, claims checked, keys from PEM or JWKS."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from common.keys import generate_keypair, load_public_key, public_jwk
from common.testing import test_keys
from common.tokens import InvalidToken, KeySet, TokenVerifier

ISSUER, AUDIENCE = "lms-user-service", "lms"


def claims(**overrides) -> dict:
    now = int(time.time())
    return {
        "user_id": 1,
        "role": "admin",
        "is_approved": True,
        "token_type": "access",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 60,
        "iss": ISSUER,
        "aud": AUDIENCE,
        **overrides,
    }


def verifier(**keyset) -> TokenVerifier:
    return TokenVerifier(keys=KeySet(**keyset), issuer=ISSUER, audience=AUDIENCE)


def pem_verifier() -> TokenVerifier:
    return verifier(pem_paths=[str(test_keys.public_path)])


def signed(payload: dict, *, algorithm: str = "RS256", key=None, kid: str | None = None) -> str:
    return jwt.encode(payload, key or test_keys.private_key, algorithm=algorithm, headers={"kid": kid or test_keys.kid})


def hs256_with_the_public_key() -> str:
    """The classic confusion attack: HMAC keyed with the (public) PEM, hoping the verifier uses it as a secret."""

    def part(data: dict) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": test_keys.kid}) + b"." + part(claims())
    signature = hmac.new(test_keys.public_path.read_bytes(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


@pytest.fixture
def second_key(tmp_path):
    """Another RS256 key pair, as after a rotation: (private key, public jwk)."""
    private_path, public_path = generate_keypair(tmp_path / "rotated")
    private_key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    return private_key, public_jwk(load_public_key(public_path.read_bytes()))


def test_a_valid_token_gives_its_claims():
    verified = pem_verifier().verify(test_keys.mint(user_id=9, role="agent", is_approved=False))

    assert (verified.user_id, verified.role, verified.is_approved, verified.token_type) == (9, "agent", False, "access")
    assert verified.expires_at > time.time()


def test_a_refresh_token_verifies_only_as_a_refresh_token():
    token = test_keys.mint(user_id=9, role="agent", token_type="refresh")

    assert pem_verifier().verify(token, expected_type="refresh").token_type == "refresh"
    with pytest.raises(InvalidToken, match="not an access token"):
        pem_verifier().verify(token)


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda: jwt.encode(claims(), key=None, algorithm="none"), "algorithm"),
        (lambda: jwt.encode(claims(), "shared-secret", algorithm="HS256", headers={"kid": test_keys.kid}), "algorithm"),
        (hs256_with_the_public_key, "algorithm"),
        (lambda: signed(claims(), algorithm="RS512"), "algorithm"),
        (lambda: signed(claims(), algorithm="PS256"), "algorithm"),
        (lambda: test_keys.mint(user_id=1, role="admin", lifetime=-1), "expired"),
        (lambda: test_keys.mint(user_id=1, role="admin", audience="someone-else"), "audience"),
        (lambda: test_keys.mint(user_id=1, role="admin", issuer="someone-else"), "issuer"),
        (lambda: test_keys.mint(user_id=1, role="admin", token_type="refresh"), "not an access token"),
        (lambda: signed({k: v for k, v in claims().items() if k != "exp"}), "invalid"),
        (lambda: signed({k: v for k, v in claims().items() if k != "jti"}), "invalid"),
        (lambda: signed({k: v for k, v in claims().items() if k != "token_type"}), "invalid"),
        (lambda: signed(claims(user_id="ann")), "malformed"),
        (lambda: signed(claims(), kid="someone-elses-key"), "unknown key"),
        (lambda: test_keys.mint(user_id=1, role="admin")[:-4] + "AAAA", "invalid"),
        (lambda: "not-a-token", "malformed"),
    ],
    ids=[
        "alg-none",
        "hs256-secret",
        "hs256-public-key",
        "rs512",
        "ps256",
        "expired",
        "audience",
        "issuer",
        "refresh-as-access",
        "no-exp",
        "no-jti",
        "no-token-type",
        "user-id-not-a-number",
        "unknown-kid",
        "bad-signature",
        "garbage",
    ],
)
def test_untrustworthy_tokens_are_refused(make_token, reason):
    with pytest.raises(InvalidToken, match=f"(?i){reason}"):
        pem_verifier().verify(make_token())


def test_a_token_signed_by_another_key_with_our_kid_is_refused(second_key):
    other_private, _ = second_key

    with pytest.raises(InvalidToken):
        pem_verifier().verify(signed(claims(), key=other_private))


def test_keys_come_from_the_jwks_and_are_cached(http_server):
    issuer = http_server()
    issuer.serve_json({"keys": [public_jwk(load_public_key(test_keys.public_path.read_bytes()))]})
    jwks_verifier = verifier(jwks_url=f"{issuer.url}/jwks", refresh_cooldown=0)

    for user_id in range(5):
        assert jwks_verifier.verify(test_keys.mint(user_id=user_id, role="customer")).user_id == user_id

    assert [(hit.method, hit.path) for hit in issuer.hits] == [("GET", "/jwks")]


def test_a_rotated_key_is_fetched_when_its_kid_first_appears(http_server, second_key):
    new_private, new_jwk = second_key
    old_jwk = public_jwk(load_public_key(test_keys.public_path.read_bytes()))
    issuer = http_server()
    issuer.serve_json({"keys": [old_jwk]})
    jwks_verifier = verifier(jwks_url=f"{issuer.url}/jwks", refresh_cooldown=0)
    jwks_verifier.verify(test_keys.mint(user_id=1, role="customer"))
    new_token = signed(claims(), key=new_private, kid=new_jwk["kid"])

    with pytest.raises(InvalidToken, match="unknown key"):
        jwks_verifier.verify(new_token)  # not published yet
    issuer.serve_json({"keys": [old_jwk, new_jwk]})

    assert jwks_verifier.verify(new_token).user_id == 1
    assert jwks_verifier.verify(test_keys.mint(user_id=2, role="customer")).user_id == 2
    assert len(issuer.hits) == 3  # first use, the unpublished kid, the published one; then cached


def test_a_flood_of_made_up_kids_reaches_the_issuer_once_per_cooldown(http_server):
    issuer = http_server()
    issuer.serve_json({"keys": [public_jwk(load_public_key(test_keys.public_path.read_bytes()))]})
    jwks_verifier = verifier(jwks_url=f"{issuer.url}/jwks", refresh_cooldown=60)
    jwks_verifier.verify(test_keys.mint(user_id=1, role="customer"))

    for _ in range(20):
        with pytest.raises(InvalidToken):
            jwks_verifier.verify(signed(claims(), kid=uuid.uuid4().hex))

    assert len(issuer.hits) == 1


def test_after_the_cooldown_an_unknown_kid_is_looked_up_again(http_server):
    issuer = http_server()
    issuer.serve_json({"keys": []})
    jwks_verifier = verifier(jwks_url=f"{issuer.url}/jwks", refresh_cooldown=0.2)
    token = test_keys.mint(user_id=1, role="customer")
    with pytest.raises(InvalidToken):
        jwks_verifier.verify(token)
    issuer.serve_json({"keys": [public_jwk(load_public_key(test_keys.public_path.read_bytes()))]})

    with pytest.raises(InvalidToken):
        jwks_verifier.verify(token)  # still cooling down
    time.sleep(0.25)

    assert jwks_verifier.verify(token).user_id == 1
    assert len(issuer.hits) == 2


def test_a_key_removed_from_the_jwks_is_dropped_at_the_next_refresh(http_server, second_key):
    new_private, new_jwk = second_key
    old_jwk = public_jwk(load_public_key(test_keys.public_path.read_bytes()))
    issuer = http_server()
    issuer.serve_json({"keys": [old_jwk]})
    jwks_verifier = verifier(jwks_url=f"{issuer.url}/jwks", refresh_cooldown=0)
    old_token = test_keys.mint(user_id=1, role="customer")
    jwks_verifier.verify(old_token)
    issuer.serve_json({"keys": [new_jwk]})  # the old key withdrawn (compromised), the new one published

    assert jwks_verifier.verify(signed(claims(), key=new_private, kid=new_jwk["kid"])).user_id == 1
    with pytest.raises(InvalidToken, match="unknown key"):
        jwks_verifier.verify(old_token)


def test_an_empty_jwks_withdraws_every_fetched_key(http_server):
    issuer = http_server()
    issuer.serve_json({"keys": [public_jwk(load_public_key(test_keys.public_path.read_bytes()))]})
    jwks_verifier = verifier(jwks_url=f"{issuer.url}/jwks", refresh_cooldown=0)
    token = test_keys.mint(user_id=1, role="customer")
    jwks_verifier.verify(token)
    issuer.serve_json({"keys": []})

    with pytest.raises(InvalidToken, match="unknown key"):
        jwks_verifier.verify(signed(claims(), kid="not-published"))  # a refresh, to an empty set
    with pytest.raises(InvalidToken, match="unknown key"):
        jwks_verifier.verify(token)


def test_a_failed_refresh_keeps_the_last_fetched_keys(http_server):
    issuer = http_server()
    issuer.serve_json({"keys": [public_jwk(load_public_key(test_keys.public_path.read_bytes()))]})
    jwks_verifier = verifier(jwks_url=f"{issuer.url}/jwks", refresh_cooldown=0)
    token = test_keys.mint(user_id=1, role="customer")
    jwks_verifier.verify(token)
    issuer.serve_json({"error": "down"})
    issuer.default.status = 500

    with pytest.raises(InvalidToken, match="unknown key"):
        jwks_verifier.verify(signed(claims(), kid="not-published"))  # a refresh, which fails
    assert jwks_verifier.verify(token).user_id == 1


def test_keys_from_pem_files_stay_whatever_the_jwks_says(http_server, second_key):
    _, new_jwk = second_key
    issuer = http_server()
    issuer.serve_json({"keys": [new_jwk]})
    both = verifier(pem_paths=[str(test_keys.public_path)], jwks_url=f"{issuer.url}/jwks", refresh_cooldown=0)

    with pytest.raises(InvalidToken, match="unknown key"):
        both.verify(signed(claims(), kid="not-published"))  # a successful refresh without the PEM key
    assert both.verify(test_keys.mint(user_id=3, role="admin")).user_id == 3


@pytest.mark.parametrize("status", [500, 404])
def test_an_issuer_answering_badly_leaves_the_configured_keys_working(http_server, status):
    issuer = http_server()
    issuer.serve_json({"error": "down"})
    issuer.default.status = status
    both = verifier(pem_paths=[str(test_keys.public_path)], jwks_url=f"{issuer.url}/jwks", refresh_cooldown=0)

    with pytest.raises(InvalidToken, match="unknown key"):
        both.verify(signed(claims(), kid="not-published"))
    assert both.verify(test_keys.mint(user_id=3, role="admin")).user_id == 3


def test_an_unreachable_issuer_is_an_invalid_token_not_a_crash(closed_url):
    unreachable = verifier(jwks_url=f"{closed_url}/jwks", refresh_cooldown=0)

    with pytest.raises(InvalidToken, match="unknown key"):
        unreachable.verify(test_keys.mint(user_id=3, role="admin"))
