"""simplejwt tokens signed with RS256 and a `kid` header, verified by `kid` (key rotation)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jwt
from django.conf import settings
from rest_framework_simplejwt import tokens
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings

from common.keys import key_id, load_public_key, public_jwk, read_public_keys


@cache
def verification_keys() -> dict[str, object]:
    """The current public key and the previous ones still in rotation, by `kid`."""
    current = load_public_key(Path(settings.JWT_PRIVATE_KEY_PATH).read_bytes())
    keys = {key_id(current): current}  # first: the signing key
    keys.update(read_public_keys(settings.JWT_PREVIOUS_PUBLIC_KEY_PATHS))  # a missing old key is skipped, not a 500
    return keys


def jwks_document() -> dict:
    """The public key set that verifies every token still in circulation."""
    return {"keys": [public_jwk(key) for key in verification_keys().values()]}


class KeyIdTokenBackend(TokenBackend):
    """Puts `kid` in the header when signing; picks the verifying key by `kid`."""

    @property
    def signing_kid(self) -> str:
        return next(iter(verification_keys()))

    def encode(self, payload: dict) -> str:
        jwt_payload = {**payload, "aud": self.audience, "iss": self.issuer}
        return jwt.encode(
            jwt_payload, self.prepared_signing_key, algorithm=self.algorithm, headers={"kid": self.signing_kid}
        )

    def get_verifying_key(self, token) -> object:
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
        except jwt.PyJWTError as exc:
            raise TokenBackendError("Token is invalid") from exc
        key = verification_keys().get(kid)
        if key is None:
            raise TokenBackendError("Token was signed by an unknown key")
        return key


@cache
def token_backend() -> KeyIdTokenBackend:
    return KeyIdTokenBackend(
        api_settings.ALGORITHM,
        api_settings.SIGNING_KEY,
        "",
        api_settings.AUDIENCE,
        api_settings.ISSUER,
        None,
        api_settings.LEEWAY,
        api_settings.JSON_ENCODER,
    )


class _KeyIdBackendMixin:
    @property
    def token_backend(self) -> KeyIdTokenBackend:
        return token_backend()


class AccessToken(_KeyIdBackendMixin, tokens.AccessToken):
    """Short-lived; carries the claims the gateway and services authorise on."""


class RevokedTokenError(TokenError):
    """A genuine, unexpired refresh token that is on the blacklist; `payload` is its verified claims."""

    def __init__(self, message: str, *, payload: dict) -> None:
        super().__init__(message)
        self.payload = payload


class RefreshToken(_KeyIdBackendMixin, tokens.RefreshToken):
    """Long-lived, rotated on use, blacklisted on logout and password change."""

    access_token_class = AccessToken

    def check_blacklist(self) -> None:
        # Runs after the signature and expiry checks, so a revoked token is told apart from a bad one.
        try:
            super().check_blacklist()
        except TokenError as exc:
            raise RevokedTokenError(str(exc), payload=dict(self.payload)) from exc
