"""Every write of user_service: one function per use case, each in one transaction."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from common import events
from common.errors import InvalidInput
from common.outbox.publisher import publish
from users.errors import (
    AgentAlreadyDecided,
    AgentRejected,
    CannotDeactivateSelf,
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenAlreadyRevoked,
    RefreshTokenNotOwned,
    TokenRevoked,
    UserNotFound,
    WrongPassword,
)
from users.models import Approval, Role, User
from users.tokens import RefreshToken, RevokedTokenError

SIGNUP_ROLES = (Role.CUSTOMER, Role.AGENT)


def _validate_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(details={"password": list(exc.messages)}) from exc


def _create_user(*, email: str, password: str, first_name: str, last_name: str, role: str) -> User:
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
    except IntegrityError as exc:
        # The case-insensitive unique constraint decides between concurrent signups.
        raise EmailTaken() from exc
    return user


def register_user(*, email: str, password: str, first_name: str, last_name: str, role: str) -> User:
    """Sign up a customer (approved at once) or an agent (waiting for an admin)."""
    if role not in SIGNUP_ROLES:
        raise InvalidInput.on("role", "Must be 'customer' or 'agent'.")
    return _create_user(email=email, password=password, first_name=first_name, last_name=last_name, role=role)


def create_admin(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    """Create an admin (from the API by another admin, or from the `createadmin` command)."""
    return _create_user(email=email, password=password, first_name=first_name, last_name=last_name, role=Role.ADMIN)


def authenticate(*, email: str, password: str) -> User:
    """The active user with these credentials; the same error whatever was wrong.

    A rejected agent is told so (403) only after the password checks out,
    so the answer reveals nothing about accounts to someone without it.
    """
    # The lookup users.selectors.find_user_by_email makes (services may not import selectors).
    user = User.objects.with_email(email)
    if user is None or not user.is_active:
        User().set_password(password)  # same hashing cost as a real check: no timing oracle
        raise InvalidCredentials()
    if not user.check_password(password):
        raise InvalidCredentials()
    if user.approval == Approval.REJECTED:
        raise AgentRejected()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    return user


def issue_tokens(user: User) -> dict[str, str]:
    """A new refresh/access pair whose claims are read from the user now."""
    refresh = RefreshToken.for_user(user)
    refresh["user_id"] = user.id  # an integer, as every service reads it (simplejwt writes a string)
    refresh["role"] = user.role
    refresh["is_approved"] = user.is_approved
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def _valid_refresh(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)
    except TokenError as exc:
        raise TokenRevoked(str(exc)) from exc


def refresh_tokens(*, refresh: str) -> dict[str, str]:
    """Rotate a refresh token: the old one stops working, the new pair has fresh claims.

    A deactivated, rejected or demoted (role changed) user cannot refresh.
    """
    token = _valid_refresh(refresh)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=token.get("user_id"), is_active=True).first()
        if user is not None and user.approval != Approval.REJECTED and token.get("role") == user.role:
            _, created = BlacklistedToken.objects.get_or_create(token=_outstanding(token))
            if not created:  # a concurrent refresh with the same token won
                raise TokenRevoked()
            return issue_tokens(user)
    # Outside the transaction, or the refusal would roll the revocation back: the token stays
    # dead even if the change that stopped it (deactivation, demotion) is later undone.
    token.blacklist()
    raise TokenRevoked()


def _outstanding(token: RefreshToken) -> OutstandingToken:
    outstanding = OutstandingToken.objects.filter(jti=token["jti"]).first()
    if outstanding is None:
        raise TokenRevoked()
    return outstanding


def logout(*, user: User, refresh: str) -> None:
    """Revoke one refresh token of the caller.

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
    token.blacklist()


def revoke_all_tokens(user: User) -> int:
    """Blacklist every outstanding refresh token of `user`; returns how many were revoked."""
    outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    revoked = [BlacklistedToken(token=token) for token in outstanding]
    BlacklistedToken.objects.bulk_create(revoked, ignore_conflicts=True)
    return len(revoked)


def change_password(*, user: User, old_password: str, new_password: str) -> None:
    """Set a new password after checking the old one; every refresh token stops working."""
    if not user.check_password(old_password):
        raise WrongPassword()
    _validate_password(new_password, user)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password", "updated_at"])
        revoke_all_tokens(user)


def update_profile(*, user: User, first_name: str | None = None, last_name: str | None = None) -> User:
    """Change the caller's names; role, email and approval are not changed here."""
    if first_name is not None:
        user.first_name = first_name
    if last_name is not None:
        user.last_name = last_name
    user.save(update_fields=["first_name", "last_name", "updated_at"])
    return user


def decide_agent(*, user_id: int, admin_id: int, approve: bool) -> User:
    """Approve or reject an agent waiting for approval; exactly one of concurrent decisions wins."""
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
    if not approve:
        revoke_all_tokens(agent)
    return agent


def delete_agent(*, user_id: int) -> None:
    """Deactivate an agent: they cannot sign in, and their tokens stop at the next refresh."""
    with transaction.atomic():
        agent = User.objects.select_for_update().filter(pk=user_id, role=Role.AGENT, is_active=True).first()
        if agent is None:
            raise UserNotFound("No such agent.")
        _deactivate(agent)


def deactivate_user(*, user_id: int, admin_id: int) -> User:
    """Deactivate any user but the acting admin (the admin site's action), exactly as `delete_agent` does."""
    if user_id == admin_id:
        raise CannotDeactivateSelf()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
        if user is None:
            raise UserNotFound()
        _deactivate(user)
    return user


def _deactivate(user: User) -> None:
    # The row stays (audit trail, other services' references); signing in and refreshing stop.
    user.is_active = False
    user.deleted_at = timezone.now()
    user.save(update_fields=["is_active", "deleted_at", "updated_at"])
    revoke_all_tokens(user)
