"""Signing in: the password, then (when the user has or needs one) the second factor; refreshing.

    password ok, no factor, none needed  -> a session and its tokens
    password ok, factor set up           -> a `verify` challenge; challenge + code -> the tokens
    password ok, role needs a factor     -> an `enrol` challenge; set the factor up with it,
                                            and its first code completes the sign-in

A challenge is a random token (only its digest is stored), valid MFA_CHALLENGE_SECONDS, used
once, and dead after MAX_CODE_FAILURES wrong codes. Every outcome is in the audit trail, the
failures written outside the transaction that raises, so they are kept.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from common.audit import record
from users import factors, mfa
from users.errors import AgentRejected, InvalidCredentials, InvalidMfaCode, MfaChallengeInvalid, TokenRevoked
from users.models import Approval, ChallengeKind, LoginChallenge, User, UserSession
from users.sessions import Device, EndReason, end_sessions, rotate, start_session
from users.tokens import RefreshToken, RevokedTokenError

MAX_CODE_FAILURES = 5
METHODS = ["totp", "recovery_code"]


def _failed(reason: str, *, request, user: User | None = None, event: str = "login.failed") -> None:
    subject = {"subject_type": "user", "subject_id": user.id} if user is not None else {}
    record(event, request=request, outcome="failure", reason=reason, **subject)


def check_password(*, email: str, password: str, request=None) -> User:
    """The active user with these credentials; the same error whatever was wrong (the audit says which).

    A rejected agent is told so (403) only after the password checks out,
    so the answer reveals nothing about accounts to someone without it.
    """
    user = User.objects.with_email(email)
    if user is None or not user.is_active:
        User().set_password(password)  # same hashing cost as a real check: no timing oracle
        _failed("unknown_email" if user is None else "inactive", request=request, user=user)
        raise InvalidCredentials()
    if not user.check_password(password):
        _failed("wrong_password", request=request, user=user)
        raise InvalidCredentials()
    if user.approval == Approval.REJECTED:
        _failed("agent_rejected", request=request, user=user)
        raise AgentRejected()
    return user


def sign_in(*, email: str, password: str, request=None) -> dict:
    """The first step: tokens for a user without a second factor, else a challenge for the second step."""
    user = check_password(email=email, password=password, request=request)
    if factors.has_factor(user):
        return {"mfa_required": True, "methods": METHODS, **_new_challenge(user, ChallengeKind.VERIFY, request)}
    if factors.role_needs_factor(user):  # and has none (above): must_enrol without asking twice
        return {"mfa_enrolment_required": True, **_new_challenge(user, ChallengeKind.ENROL, request)}
    with transaction.atomic():
        return complete_sign_in(user, request=request)


def complete_sign_in(user: User, *, request, method: str | None = None) -> dict:
    """A new session for `user` and its tokens; audited as a successful sign-in."""
    pair = start_session(user, Device.of(request))
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    record(
        "login.succeeded", request=request, actor_id=user.id, subject_type="user", subject_id=user.id,
        details={"second_factor": method} if method else None,
    )  # fmt: skip
    return {**pair, "user": user}


def _new_challenge(user: User, kind: str, request) -> dict:
    token = secrets.token_urlsafe(32)
    device = Device.of(request)
    LoginChallenge.objects.filter(user=user, expires_at__lt=timezone.now()).delete()  # the user's dead ones
    LoginChallenge.objects.create(
        user=user,
        digest=mfa.token_digest(token),
        kind=kind,
        expires_at=timezone.now() + timedelta(seconds=settings.MFA_CHALLENGE_SECONDS),
        ip=device.ip,
        user_agent=device.user_agent,
    )
    return {"challenge": token, "expires_in": settings.MFA_CHALLENGE_SECONDS}


def _open_challenge(token: str, *, kind: str | None = None) -> LoginChallenge:
    """The live challenge for `token`, locked; MfaChallengeInvalid when unknown, used, expired or worn out."""
    challenge = (
        LoginChallenge.objects.select_for_update().select_related("user").filter(digest=mfa.token_digest(token)).first()
    )
    if (
        challenge is None
        or challenge.used_at is not None
        or challenge.expires_at <= timezone.now()
        or challenge.failures >= MAX_CODE_FAILURES
        or (kind is not None and challenge.kind != kind)
        or not challenge.user.is_active
        or challenge.user.approval == Approval.REJECTED
    ):
        raise MfaChallengeInvalid()
    return challenge


def challenge_user(token: str) -> User | None:
    """Whose sign-in this challenge token continues (for the sign-in limits), without using it."""
    challenge = LoginChallenge.objects.select_related("user").filter(digest=mfa.token_digest(token)).first()
    return challenge.user if challenge is not None else None


def enrol_while_signing_in(*, challenge: str) -> dict[str, str]:
    """For a role that needs a factor: a pending TOTP secret, set up with the sign-in's `enrol` challenge."""
    with transaction.atomic():
        user = _open_challenge(challenge, kind=ChallengeKind.ENROL).user
    return factors.start_enrolment(user)


def verify_second_factor(*, challenge: str, code: str, request=None) -> dict:
    """The second step: the challenge and a code -> the session's tokens (and recovery codes after enrolling)."""
    try:
        with transaction.atomic():
            opened = _open_challenge(challenge)
            user = opened.user
            if opened.kind == ChallengeKind.ENROL:
                result = _finish_enrolment(opened, code, request)  # a wrong code is audited there
            else:
                method = factors.check_code(user, code)
                result = None if method is None else _finish(opened, request, method)
                if result is None:
                    _failed("wrong_code_at_sign_in", request=request, user=user, event="mfa.failed")
            if result is not None:
                return result
            opened.failures += 1
            opened.save(update_fields=["failures"])
    except MfaChallengeInvalid:
        _failed("challenge_invalid", request=request)
        raise
    raise InvalidMfaCode()


def _finish(challenge: LoginChallenge, request, method: str) -> dict:
    challenge.used_at = timezone.now()
    challenge.save(update_fields=["used_at"])
    if method == "recovery_code":
        factors.record_recovery_use(challenge.user, request=request)
    return complete_sign_in(challenge.user, request=request, method=method)


def _finish_enrolment(challenge: LoginChallenge, code: str, request) -> dict | None:
    codes = factors.confirm_pending(challenge.user, code, request=request)
    if codes is None:
        return None
    return {**_finish(challenge, request, "totp"), "recovery_codes": codes}


def refresh(*, refresh: str, request=None) -> dict[str, str]:
    """Rotate a refresh token: the old one stops working, the new pair has fresh claims.

    A refresh token that was already rotated (or revoked) and is presented again means it was
    copied: its whole session ends, and the reuse is audited. A deactivated, rejected or demoted
    user cannot refresh.
    """
    try:
        token = RefreshToken(refresh)
    except RevokedTokenError as exc:
        _end_reused_family(exc.payload, request)
        raise TokenRevoked() from exc
    except TokenError as exc:
        raise TokenRevoked(str(exc)) from exc
    reused = False
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=token.get("user_id"), is_active=True).first()
        session = _session_of(token, user)
        allowed = user is not None and user.approval != Approval.REJECTED and token.get("role") == user.role
        # A role that needs a second factor gets no more tokens without one (a token from before it was
        # required, or from before MFA existed, would otherwise refresh forever).
        if allowed and session and not factors.must_enrol(user):
            _, created = BlacklistedToken.objects.get_or_create(token=_outstanding(token))
            if created and session.current_jti == token["jti"]:
                return rotate(session, user, Device.of(request))
            reused = True  # a concurrent refresh with the same token won: the token was used twice
    if reused:
        _end_reused_family(token.payload, request)
        raise TokenRevoked()
    # Outside the transaction, or the refusal would roll the revocation back: the token stays
    # dead even if the change that stopped it (deactivation, demotion) is later undone.
    token.blacklist()
    raise TokenRevoked()


def _session_of(token: RefreshToken, user: User | None) -> UserSession | None:
    """The token's live session, locked; a token from before sessions existed gets one now."""
    if user is None:
        return None
    sid = token.get("sid")
    if sid is None:
        return UserSession.objects.create(
            id=uuid.uuid4(), user=user, current_jti=token["jti"], last_used_at=timezone.now()
        )
    return UserSession.objects.select_for_update().filter(id=sid, user=user, ended_at__isnull=True).first()


def _end_reused_family(payload: dict, request) -> None:
    """End the session of a refresh token presented after it was rotated, and audit it.

    A token of a session that had already ended for another reason (sign-out, password change)
    is only stale: refused, not audited as theft.
    """
    sid = payload.get("sid")
    with transaction.atomic():
        if not sid or not end_sessions(UserSession.objects.filter(id=sid), EndReason.REFRESH_REUSE):
            return
        record(
            "token.refresh_reused", request=request, outcome="failure", reason="rotated_token_reused",
            subject_type="user", subject_id=payload.get("user_id") or "", details={"session": sid},
        )  # fmt: skip


def _outstanding(token: RefreshToken) -> OutstandingToken:
    outstanding = OutstandingToken.objects.filter(jti=token["jti"]).first()
    if outstanding is None:
        raise TokenRevoked()
    return outstanding
