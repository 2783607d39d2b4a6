"""API keys for client applications: making, rotating and revoking them, and exchanging one for a token.

A key reads `lms_<prefix>_<secret>`. The prefix (12 hex digits) finds the row;
the secret (43 URL-safe characters, 256 bits) is checked against an HMAC-SHA256
of it keyed with API_KEY_HASH_KEY, compared in constant time, so neither the
database nor its backups can check a guess. Only the gateway exchanges a key
(POST /internal/api-keys/exchange) for a short-lived access token of the key's
owner that carries the key's id and scopes; the services verify that token as
any other and enforce its scopes (common.scopes).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common import scopes
from common.audit import record
from common.errors import InvalidInput
from users.errors import ApiKeyNotFound, ApiKeyRevoked, InvalidApiKey
from users.models import ApiKey, Role, User
from users.tokens import AccessToken

KEY_START = "lms_"
OWNER_ROLES = (Role.ADMIN, Role.AGENT)  # a key acts as a staff member; customers use their own sign-in


@dataclass(frozen=True)
class MadeKey:
    """A new key's row and its secret, which is never stored and shown only this once."""

    api_key: ApiKey
    key: str


def _digest(secret: str) -> str:
    return hmac.new(settings.API_KEY_HASH_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()


def _new_secret() -> tuple[str, str, str]:
    """A fresh key: (the whole key, its prefix, its digest)."""
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    return f"{KEY_START}{prefix}_{secret}", prefix, _digest(secret)


def owner_refusal(owner: User | None) -> str | None:
    """Why `owner` cannot own a key, or None when they can."""
    if owner is None or not owner.is_active:
        return "No such active user."
    if owner.role not in OWNER_ROLES:
        return "An API key acts as an admin or an agent, not a customer."
    if owner.role == Role.AGENT and not owner.is_approved:
        return "This agent is not approved."
    return None


def _owner(owner_id: int) -> User:
    owner = User.objects.filter(pk=owner_id).first()
    if (refusal := owner_refusal(owner)) is not None:
        raise InvalidInput.on("owner_id", refusal)
    return owner


def _checked_scopes(wanted: list[str]) -> list[str]:
    unknown = sorted(set(wanted) - set(scopes.ALL))
    if unknown:
        raise InvalidInput.on("scopes", f"Unknown scopes: {', '.join(unknown)}. Known: {', '.join(scopes.ALL)}.")
    if not wanted:
        raise InvalidInput.on("scopes", "A key needs at least one scope.")
    return sorted(set(wanted))


def create(
    *,
    name: str,
    owner_id: int,
    scopes: list[str],
    admin_id: int,
    expires_at: datetime | None = None,
    rate_limit: int | None = None,
    request=None,
) -> MadeKey:
    """A new key for `owner_id`; audited as api_key.created."""
    owner = _owner(owner_id)
    granted = _checked_scopes(scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput.on("expires_at", "The expiry must be in the future.")
    key, prefix, digest = _new_secret()
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            name=name,
            owner=owner,
            prefix=prefix,
            digest=digest,
            scopes=granted,
            rate_limit=rate_limit or settings.API_KEY_DEFAULT_RATE_LIMIT,
            expires_at=expires_at,
            created_by_id=admin_id,
        )
        record(
            "api_key.created", request=request, actor_id=admin_id, subject_type="api_key", subject_id=api_key.id,
            details={"name": name, "owner_id": owner.id, "scopes": granted, "prefix": prefix},
        )  # fmt: skip
    return MadeKey(api_key, key)


def _locked(api_key_id: int) -> ApiKey:
    api_key = ApiKey.objects.select_for_update().filter(pk=api_key_id).first()
    if api_key is None:
        raise ApiKeyNotFound()
    return api_key


def revoke(*, api_key_id: int, admin_id: int, request=None) -> ApiKey:
    """Revoke a key (again: no change); the gateway stops accepting it within API_KEY_CACHE_SECONDS."""
    with transaction.atomic():
        api_key = _locked(api_key_id)
        if api_key.revoked_at is None:
            api_key.revoked_at, api_key.revoked_by_id = timezone.now(), admin_id
            api_key.save(update_fields=["revoked_at", "revoked_by"])
            record(
                "api_key.revoked", request=request, actor_id=admin_id, subject_type="api_key", subject_id=api_key.id,
                details={"name": api_key.name, "prefix": api_key.prefix},
            )  # fmt: skip
    return api_key


def rotate(*, api_key_id: int, admin_id: int, request=None) -> MadeKey:
    """A new key with the same name, owner, scopes, limit and expiry; the old one is revoked at once."""
    with transaction.atomic():
        old = _locked(api_key_id)
        if old.revoked_at is not None:
            raise ApiKeyRevoked()
        made = create(
            name=old.name, owner_id=old.owner_id, scopes=old.scopes, admin_id=admin_id,
            expires_at=old.expires_at if old.expires_at and old.expires_at > timezone.now() else None,
            rate_limit=old.rate_limit, request=request,
        )  # fmt: skip
        old.revoked_at, old.revoked_by_id, old.replaced_by = timezone.now(), admin_id, made.api_key
        old.save(update_fields=["revoked_at", "revoked_by", "replaced_by"])
        record(
            "api_key.rotated", request=request, actor_id=admin_id, subject_type="api_key", subject_id=old.id,
            details={"name": old.name, "replaced_by": made.api_key.id},
        )  # fmt: skip
    return made


def _parsed(key: str) -> tuple[str, str] | None:
    if not key.startswith(KEY_START):
        return None
    prefix, underscore, secret = key[len(KEY_START) :].partition("_")
    if not underscore or len(prefix) != 12 or not secret or len(secret) > 100:
        return None
    return prefix, secret


def authenticate(key: str) -> ApiKey:
    """The usable key `key` is (its owner loaded); InvalidApiKey, with one message for every reason."""
    parsed = _parsed(key.strip())
    api_key = ApiKey.objects.select_related("owner").filter(prefix=parsed[0]).first() if parsed else None
    expected = api_key.digest if api_key is not None else _digest("")  # the same work whether or not it exists
    matches = hmac.compare_digest(expected, _digest(parsed[1] if parsed else ""))
    now = timezone.now()
    if (
        api_key is None
        or not matches
        or api_key.revoked_at is not None
        or (api_key.expires_at is not None and api_key.expires_at <= now)
        or not api_key.owner.is_active
        or (api_key.owner.role == Role.AGENT and not api_key.owner.is_approved)
    ):
        raise InvalidApiKey()
    return api_key


def exchange(key: str) -> dict:
    """A short-lived access token for the key's owner, with the key's id and scopes; counts the use."""
    api_key = authenticate(key)
    lifetime = timedelta(seconds=settings.API_KEY_TOKEN_SECONDS)
    if api_key.expires_at is not None:
        lifetime = min(lifetime, api_key.expires_at - timezone.now())  # never outlives the key
    token = AccessToken.for_user(api_key.owner)
    token.set_exp(lifetime=lifetime)
    token["role"] = api_key.owner.role
    token["is_approved"] = api_key.owner.is_approved
    token["api_key_id"] = api_key.id
    token["scope"] = " ".join(api_key.scopes)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    return {
        "access": str(token),
        "expires_in": int(lifetime.total_seconds()),
        "api_key": {
            "id": api_key.id,
            "name": api_key.name,
            "owner_id": api_key.owner_id,
            "scopes": api_key.scopes,
            "rate_limit": api_key.rate_limit,
        },
    }
