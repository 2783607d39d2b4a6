"""Every write of user_service: one function per use case, each in one transaction."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError

from common import events
from common.audit import record
from common.errors import InvalidInput
from common.outbox.publisher import publish
from users import sessions
from users.errors import (
    AgentAlreadyDecided,
    CannotDeactivateSelf,
    EmailTaken,
    InvalidRefreshToken,
    RefreshTokenAlreadyRevoked,
    RefreshTokenNotOwned,
    SessionNotFound,
    UserNotFound,
    WrongPassword,
)
from users.models import Approval, Role, User, UserSession
from users.sessions import EndReason, end_all_sessions, end_sessions
from users.tokens import RefreshToken, RevokedTokenError

SIGNUP_ROLES = (Role.CUSTOMER, Role.AGENT)


def _validate_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(details={"password": list(exc.messages)}) from exc


def _create_user(
    *, email: str, password: str, first_name: str, last_name: str, role: str, actor_id: int | None = None, request=None
) -> User:
    user = User(
        email=email.strip().lower(),
        first_name=first_name,
        last_name=last_name,
        role=role,
        approval=Approval.PENDING if role == Role.AGENT else Approval.APPROVED,
        is_staff=role == Role.ADMIN,
        is_superuser=role == Role.ADMIN,
    )
    _validate_password(password, user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            publish(
                events.UserRegistered(
                    user_id=user.id,
                    email=user.email,
                    first_name=user.first_name,
                    last_name=user.last_name,
                    role=user.role,
                    is_approved=user.is_approved,
                )
            )
            event = "admin.created" if role == Role.ADMIN else "user.registered"
            actor = actor_id if role == Role.ADMIN else user.id
            record(event, request=request, actor_id=actor, subject_type="user", subject_id=user.id)
    except IntegrityError as exc:
        # The case-insensitive unique constraint decides between concurrent signups.
        raise EmailTaken() from exc
    return user


def register_user(*, email: str, password: str, first_name: str, last_name: str, role: str, request=None) -> User:
    """Sign up a customer (approved at once) or an agent (waiting for an admin)."""
    if role not in SIGNUP_ROLES:
        raise InvalidInput.on("role", "Must be 'customer' or 'agent'.")
    names = {"first_name": first_name, "last_name": last_name}
    return _create_user(email=email, password=password, role=role, request=request, **names)


def create_admin(
    *, email: str, password: str, first_name: str = "", last_name: str = "", created_by: int | None = None, request=None
) -> User:
    """Create an admin (from the API by another admin, or from the `createadmin` command: `created_by` None)."""
    names = {"first_name": first_name, "last_name": last_name}
    return _create_user(email=email, password=password, role=Role.ADMIN, actor_id=created_by, request=request, **names)


def logout(*, user: User, refresh: str, request=None) -> None:
    """Sign out the session of one refresh token of the caller.

    A token that is another user's, already revoked or invalid is a 400: the caller is
    still signed in, and a 401 would tell their client to sign in again.
    """
    try:
        token = RefreshToken(refresh)
    except RevokedTokenError as exc:
        raise RefreshTokenAlreadyRevoked() from exc
    except TokenError as exc:
        raise InvalidRefreshToken() from exc
    if token.get("user_id") != user.id:
        raise RefreshTokenNotOwned()
    with transaction.atomic():
        token.blacklist()
        if token.get("sid"):
            end_sessions(UserSession.objects.filter(id=token["sid"], user=user), EndReason.LOGOUT)
        record("session.logout", request=request, actor_id=user.id, subject_type="user", subject_id=user.id)


def revoke_all_tokens(user: User, reason: str = EndReason.ACCOUNT_CHANGED) -> int:
    """End every session of `user` (every refresh token stops working); returns how many sessions ended."""
    return end_all_sessions(user, reason)


def change_password(*, user: User, old_password: str, new_password: str, request=None) -> None:
    """Set a new password after checking the old one; every session ends."""
    if not user.check_password(old_password):
        record(
            "password.change_failed", request=request, actor_id=user.id, subject_type="user", subject_id=user.id,
            outcome="failure", reason="wrong_password",
        )  # fmt: skip
        raise WrongPassword()
    _validate_password(new_password, user)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password", "updated_at"])
        revoke_all_tokens(user, EndReason.PASSWORD_CHANGED)
        record("password.changed", request=request, actor_id=user.id, subject_type="user", subject_id=user.id)


def password_set_by_admin(*, user: User, admin_id: int, request=None) -> None:
    """After an admin set a user's password in the admin site: the user's sessions end, and it is audited."""
    with transaction.atomic():
        revoke_all_tokens(user, EndReason.PASSWORD_CHANGED)
        record("password.changed", request=request, actor_id=admin_id, subject_type="user", subject_id=user.id)


def end_sessions_by_admin(*, user_id: int, admin_id: int, request=None) -> int:
    """An admin signs a user out everywhere (a stolen laptop); returns how many sessions ended."""
    with transaction.atomic():
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise UserNotFound()
        ended = end_all_sessions(user, EndReason.ACCOUNT_CHANGED)
        record(
            "session.signed_out", request=request, actor_id=admin_id, subject_type="user", subject_id=user.id,
            details={"sessions_ended": ended, "by_admin": True},
        )  # fmt: skip
    return ended


def update_profile(*, user: User, first_name: str | None = None, last_name: str | None = None) -> User:
    """Change the caller's names; role, email and approval are not changed here. Consumers are told."""
    before = (user.first_name, user.last_name)
    if first_name is not None:
        user.first_name = first_name
    if last_name is not None:
        user.last_name = last_name
    if (user.first_name, user.last_name) == before:
        return user
    with transaction.atomic():
        user.save(update_fields=["first_name", "last_name", "updated_at"])
        publish(
            events.UserProfileChanged(
                user_id=user.id, email=user.email, first_name=user.first_name, last_name=user.last_name, role=user.role
            )
        )
    return user


def decide_agent(*, user_id: int, admin_id: int, approve: bool, request=None) -> User:
    """Approve or reject an agent waiting for approval; exactly one of concurrent decisions wins.

    Either way the agent's sessions end: their tokens carry the approval, so they sign in again.
    """
    with transaction.atomic():
        agent = User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
        if agent is None:
            raise UserNotFound()
        if agent.role != Role.AGENT or agent.approval != Approval.PENDING:
            raise AgentAlreadyDecided()
        agent.approval = Approval.APPROVED if approve else Approval.REJECTED
        agent.save(update_fields=["approval", "updated_at"])
        event_class = events.AgentApproved if approve else events.AgentRejected
        publish(
            event_class(
                user_id=agent.id,
                email=agent.email,
                first_name=agent.first_name,
                last_name=agent.last_name,
                decided_by=admin_id,
            )
        )
        revoke_all_tokens(agent)
        record(
            "agent.approved" if approve else "agent.rejected", request=request, actor_id=admin_id,
            subject_type="user", subject_id=agent.id,
        )  # fmt: skip
    return agent


def delete_agent(*, user_id: int, admin_id: int | None = None, request=None) -> None:
    """Deactivate an agent: they cannot sign in, and their tokens stop at the next refresh."""
    with transaction.atomic():
        agent = User.objects.select_for_update().filter(pk=user_id, role=Role.AGENT, is_active=True).first()
        if agent is None:
            raise UserNotFound("No such agent.")
        _deactivate(agent, admin_id=admin_id, request=request)


def deactivate_user(*, user_id: int, admin_id: int, request=None) -> User:
    """Deactivate any user but the acting admin (the admin site's action), exactly as `delete_agent` does."""
    if user_id == admin_id:
        raise CannotDeactivateSelf()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
        if user is None:
            raise UserNotFound()
        _deactivate(user, admin_id=admin_id, request=request)
    return user


def _deactivate(user: User, *, admin_id: int | None, request) -> None:
    # The row stays (audit trail, other services' references); signing in and refreshing stop.
    user.is_active = False
    user.deleted_at = timezone.now()
    user.save(update_fields=["is_active", "deleted_at", "updated_at"])
    revoke_all_tokens(user)
    publish(events.UserDeactivated(user_id=user.id, email=user.email, role=user.role, deactivated_by=admin_id))
    record("user.deactivated", request=request, actor_id=admin_id, subject_type="user", subject_id=user.id)


def active_sessions(user: User):
    """The caller's signed-in devices, most recently used first."""
    return sessions.active_sessions(user).order_by("-last_used_at", "-id")


def sign_out_session(*, user: User, session_id, request=None) -> None:
    """End one of the caller's sessions (a lost or old device); 404 when it is not theirs or already ended."""
    with transaction.atomic():
        if not end_sessions(UserSession.objects.filter(id=session_id, user=user), EndReason.SIGNED_OUT_BY_USER):
            raise SessionNotFound()
        record(
            "session.signed_out", request=request, actor_id=user.id, subject_type="user", subject_id=user.id,
            details={"session": str(session_id)},
        )  # fmt: skip


def sign_out_other_sessions(*, user: User, keep: str | None, request=None) -> int:
    """End every session of the caller but `keep` (the one asking); returns how many ended."""
    with transaction.atomic():
        others = UserSession.objects.filter(user=user)
        if keep:
            others = others.exclude(id=keep)
        ended = end_sessions(others, EndReason.SIGNED_OUT_BY_USER)
        if ended:
            record(
                "session.signed_out", request=request, actor_id=user.id, subject_type="user", subject_id=user.id,
                details={"sessions_ended": ended, "kept": keep},
            )  # fmt: skip
    return ended
