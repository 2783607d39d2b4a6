"""Reads of user_service that are more than a .get()."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from users.errors import ApiKeyNotFound, UserNotFound
from users.models import ApiKey, Approval, Role, User


def _search(queryset: QuerySet[User], search: str) -> QuerySet[User]:
    if not search:
        return queryset
    return queryset.filter(
        Q(email__icontains=search) | Q(first_name__icontains=search) | Q(last_name__icontains=search)
    )


def list_users(*, role: str = "", is_approved: bool | None = None, search: str = "") -> QuerySet[User]:
    """Every active user, newest first, optionally filtered."""
    users = User.objects.filter(is_active=True)
    if role:
        users = users.filter(role=role)
    if is_approved is True:
        users = users.filter(approval=Approval.APPROVED)
    elif is_approved is False:
        users = users.exclude(approval=Approval.APPROVED)
    return _search(users, search)


def list_customers(*, search: str = "") -> QuerySet[User]:
    """The active customers, for an agent to pick from."""
    return _search(User.objects.filter(is_active=True, role=Role.CUSTOMER), search)


def list_agents_awaiting_approval() -> QuerySet[User]:
    """Agents an admin has not decided on yet, oldest first (first come, first served)."""
    return User.objects.filter(is_active=True, role=Role.AGENT, approval=Approval.PENDING).order_by("created_at", "id")


def get_user(user_id: int) -> User:
    """Any user by id, active or not (for other services' checks)."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise UserNotFound()
    return user


def find_user_by_email(email: str) -> User | None:
    """The user with this email (case-insensitive), active or not; None if there is none."""
    return User.objects.with_email(email)


def list_api_keys(*, owner_id: int | None = None, revoked: bool | None = None) -> QuerySet[ApiKey]:
    """API keys, newest first; by owner, and revoked or not."""
    keys = ApiKey.objects.all()
    if owner_id is not None:
        keys = keys.filter(owner_id=owner_id)
    if revoked is not None:
        keys = keys.filter(revoked_at__isnull=not revoked)
    return keys


def get_api_key(api_key_id: int) -> ApiKey:
    api_key = ApiKey.objects.filter(pk=api_key_id).first()
    if api_key is None:
        raise ApiKeyNotFound()
    return api_key
