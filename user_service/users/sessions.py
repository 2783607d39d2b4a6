"""Sessions: each sign-in is a refresh-token family with its device, ended as a whole.

A session starts at a completed sign-in and issues the first refresh/access pair; every
rotation moves `current_jti` forward and blacklists the token it replaced (simplejwt's
blacklist). Ending a session blacklists its one live refresh token; the access tokens it
issued stay valid until they expire (ACCESS_TOKEN_LIFETIME, 5 minutes by default), since
the other services verify them by signature alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from common.audit.recorder import client_ip
from users.models import LoginChallenge, User, UserSession
from users.tokens import RefreshToken

UA_MAX = 512
EndReason = UserSession.EndReason


@dataclass(frozen=True)
class Device:
    """Where a request came from, as a session and the audit trail record it."""

    ip: str | None
    user_agent: str

    @classmethod
    def of(cls, request) -> Device:
        """The client's address as the audit trail takes it (behind the gateway: its X-Forwarded-For)."""
        if request is None:
            return cls(ip=None, user_agent="")
        return cls(ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")[:UA_MAX])


def _signed_pair(user: User, session_id: uuid.UUID) -> tuple[RefreshToken, dict[str, str]]:
    refresh = RefreshToken.for_user(user)
    refresh["user_id"] = user.id  # an integer, as every service reads it (simplejwt writes a string)
    refresh["role"] = user.role
    refresh["is_approved"] = user.is_approved
    refresh["sid"] = str(session_id)  # copied into the access token: "this session" for the sessions API
    return refresh, {"refresh": str(refresh), "access": str(refresh.access_token)}


def start_session(user: User, device: Device) -> dict[str, str]:
    """A new session for a completed sign-in, and its first refresh/access pair (claims read from the user now)."""
    session_id = uuid.uuid4()
    refresh, pair = _signed_pair(user, session_id)
    UserSession.objects.create(
        id=session_id,
        user=user,
        current_jti=refresh["jti"],
        ip=device.ip,
        user_agent=device.user_agent,
        last_used_at=timezone.now(),
    )
    return pair


def rotate(session: UserSession, user: User, device: Device) -> dict[str, str]:
    """The session's next pair: its current token is already blacklisted by the caller, under the row lock."""
    refresh, pair = _signed_pair(user, session.id)
    session.current_jti = refresh["jti"]
    session.last_used_at = timezone.now()
    session.ip = device.ip or session.ip
    session.user_agent = device.user_agent or session.user_agent
    session.save(update_fields=["current_jti", "last_used_at", "ip", "user_agent"])
    return pair


def _blacklist(outstanding: QuerySet[OutstandingToken]) -> None:
    revoked = [BlacklistedToken(token=token) for token in outstanding]
    BlacklistedToken.objects.bulk_create(revoked, ignore_conflicts=True)


def end_sessions(sessions: QuerySet[UserSession], reason: str) -> int:
    """End every active session of `sessions`; their live refresh tokens stop working. Returns how many."""
    active = list(sessions.filter(ended_at__isnull=True).values_list("id", "current_jti"))
    if not active:
        return 0
    _blacklist(OutstandingToken.objects.filter(jti__in=[jti for _, jti in active]))
    # The rows this call ended, not the ones it saw: of two concurrent sign-outs, one ends the session.
    return UserSession.objects.filter(id__in=[sid for sid, _ in active], ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=reason
    )


def end_all_sessions(user: User, reason: str) -> int:
    """End every session of `user`, revoke any refresh token issued outside a session (older tokens),
    and drop their half-done sign-ins: a challenge from before the change completes nothing after it."""
    ended = end_sessions(UserSession.objects.filter(user=user), reason)
    _blacklist(OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True))
    LoginChallenge.objects.filter(user=user, used_at__isnull=True).delete()
    return ended


def active_sessions(user: User) -> QuerySet[UserSession]:
    """The sessions that can still refresh: not ended, and used within the refresh token's lifetime."""
    alive_since = timezone.now() - api_settings.REFRESH_TOKEN_LIFETIME
    return UserSession.objects.filter(user=user, ended_at__isnull=True, last_used_at__gte=alive_since)
