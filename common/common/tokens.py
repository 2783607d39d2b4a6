"""Verifying the RS256 tokens that user_service issues. Pure Python: no Django.

The algorithm is pinned to RS256 (so `none` and HS256-with-the-public-key are
refused), and `exp`, `iss`, `aud` and the token type are checked. Keys come
from a JWKS document or PEM files; an unknown `kid` triggers a refresh of the
JWKS, at most once per cool-down, so a flood of made-up kids cannot hammer
the issuer. Each good JWKS document replaces the keys of the one before (a
withdrawn key stops verifying); a failed fetch keeps them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
import urllib3

from common.keys import read_public_keys

ALGORITHM = "RS256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "token_type", "user_id", "jti"]


class InvalidToken(Exception):
    """The token cannot be trusted; `reason` is safe to show to the client, `kind` names why in one word.

    Kinds (a bounded set, e.g. a metric's label): malformed, algorithm, unknown_key, expired, audience,
    issuer, invalid, wrong_type, claims.
    """

    def __init__(self, reason: str, *, kind: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Claims:
    """What a verified token says about its bearer."""

    user_id: int
    role: str
    is_approved: bool
    token_type: str
    jti: str
    expires_at: int
    raw: dict = field(repr=False, compare=False)


class KeySet:
    """Public keys by `kid`, from PEM files and/or a JWKS URL, refreshed on demand; unreadable PEM files are skipped."""

    def __init__(
        self,
        *,
        pem_paths: list[str] | None = None,
        jwks_url: str = "",
        refresh_cooldown: float = 30.0,
        fetch: Callable[[str], dict] | None = None,
    ) -> None:
        # A missing or broken file is skipped: the JWKS may still provide the key.
        self._pem_keys: dict[str, object] = read_public_keys(pem_paths or [])
        self._keys: dict[str, object] = dict(self._pem_keys)  # the PEM keys and those of the last good JWKS
        self._jwks_url = jwks_url
        self._cooldown = refresh_cooldown
        self._fetch = fetch or fetch_jwks
        self._last_refresh = float("-inf")
        self._lock = threading.Lock()

    def key_for(self, kid: str):
        """The key with this `kid`; refreshes the JWKS once (per cool-down) if unknown."""
        found = self._keys.get(kid)
        if found is not None or not self._jwks_url:
            return found
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._last_refresh >= self._cooldown:
                self._last_refresh = time.monotonic()
                self._load_jwks()
        return self._keys.get(kid)

    def _load_jwks(self) -> None:
        try:
            document = self._fetch(self._jwks_url)
            published = document["keys"]
            if not isinstance(published, list):
                return
            # PyJWT refuses an empty set; an issuer that withdrew its every key publishes just that.
            key_set = jwt.PyJWKSet.from_dict(document).keys if published else []
        except Exception:  # noqa: BLE001 - an unreachable issuer leaves the known keys in place
            return
        # Rebuilt from each good document, so a key the issuer withdrew stops being trusted; PEM keys stay.
        fetched = {jwk.key_id: jwk.key for jwk in key_set if jwk.key_id}
        self._keys = {**self._pem_keys, **fetched}


_http = urllib3.PoolManager(num_pools=2, maxsize=2)


def fetch_jwks(url: str) -> dict:
    """GET a JWKS document with short timeouts."""
    response = _http.request("GET", url, timeout=urllib3.Timeout(connect=1.0, read=2.0), retries=False)
    if response.status != 200:
        raise ValueError(f"JWKS endpoint answered {response.status}")
    return json.loads(response.data)


class TokenVerifier:
    """Checks a token's signature and claims; returns its `Claims` or raises `InvalidToken`."""

    def __init__(self, *, keys: KeySet, issuer: str, audience: str, leeway: int = 0) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway

    def verify(self, token: str, *, expected_type: str = "access") -> Claims:
        """Verify `token`; it must be of `expected_type` ("access" or "refresh")."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("Token is malformed.", kind="malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("Token algorithm is not allowed.", kind="algorithm")
        key = self._keys.key_for(str(header.get("kid", "")))
        if key is None:
            raise InvalidToken("Token was signed by an unknown key.", kind="unknown_key")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("Token has expired.", kind="expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("Token audience is not accepted.", kind="audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("Token issuer is not accepted.", kind="issuer") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("Token is invalid.") from exc
        if payload.get("token_type") != expected_type:
            raise InvalidToken(f"Token is not an {expected_type} token.", kind="wrong_type")
        return _claims(payload)


def _claims(payload: dict) -> Claims:
    try:
        return Claims(
            user_id=int(payload["user_id"]),
            role=str(payload.get("role", "")),
            is_approved=bool(payload.get("is_approved", False)),
            token_type=str(payload["token_type"]),
            jti=str(payload["jti"]),
            expires_at=int(payload["exp"]),
            raw=payload,
        )
    except (TypeError, ValueError) as exc:
        raise InvalidToken("Token claims are malformed.", kind="claims") from exc
