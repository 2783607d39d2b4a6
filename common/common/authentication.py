"""DRF authentication for services without a user table: the bearer's identity comes from the token."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from rest_framework import authentication, exceptions

from common import scopes
from common.tokens import Claims, InvalidToken, KeySet, TokenVerifier


@dataclass(frozen=True)
class TokenUser:
    """The caller as the token describes them; no database row behind it."""

    id: int
    role: str
    is_approved: bool
    claims: Claims

    is_authenticated = True
    is_anonymous = False
    is_active = True
    # Tokens are issued only to agents who are approved or waiting: a rejected agent cannot sign in
    # or refresh, so until an access token issued before the rejection expires it still says waiting.
    is_rejected = False

    @property
    def pk(self) -> int:
        return self.id


@lru_cache(maxsize=1)
def get_verifier() -> TokenVerifier:
    """The process-wide verifier, built from the JWT_* settings."""
    keys = KeySet(
        pem_paths=[path for path in getattr(settings, "JWT_PUBLIC_KEY_PATHS", []) if path],
        jwks_url=getattr(settings, "JWT_JWKS_URL", ""),
        refresh_cooldown=getattr(settings, "JWT_JWKS_REFRESH_COOLDOWN", 30.0),
    )
    return TokenVerifier(keys=keys, issuer=settings.JWT_ISSUER, audience=settings.JWT_AUDIENCE)


def _reset_verifier(*, setting: str, **kwargs) -> None:
    if setting.startswith("JWT_"):
        get_verifier.cache_clear()


setting_changed.connect(_reset_verifier)


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ServiceJWTAuthentication(authentication.BaseAuthentication):
    """Authenticates `Authorization: Bearer <access token>` with the issuer's public keys."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        token = bearer_token(header)
        if token is None:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            claims = get_verifier().verify(token, expected_type="access")
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed(exc.reason) from exc
        scopes.check_request(request, claims.raw)  # a token minted for an API key: its scopes, else 403
        return TokenUser(id=claims.user_id, role=claims.role, is_approved=claims.is_approved, claims=claims), claims

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'
