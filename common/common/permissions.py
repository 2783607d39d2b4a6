"""Role permissions from the token claims: customer, agent, approved agent, admin, service key."""

from __future__ import annotations

import hmac

from django.conf import settings
from rest_framework.permissions import BasePermission

from common.errors import AGENT_REJECTED_MESSAGE, ErrorCode

CUSTOMER = "customer"
AGENT = "agent"
ADMIN = "admin"

SERVICE_KEY_HEADER = "X-Service-Key"


def _role(request) -> str:
    user = request.user
    return getattr(user, "role", "") if user and user.is_authenticated else ""


def is_approved_agent(user) -> bool:
    """An agent an admin has approved."""
    return getattr(user, "role", "") == AGENT and bool(getattr(user, "is_approved", False))


class _RolePermission(BasePermission):
    allowed_roles: tuple[str, ...] = ()
    message = "Your role does not allow this."
    code = ErrorCode.PERMISSION_DENIED

    def has_permission(self, request, view) -> bool:
        role = _role(request)
        if role not in self.allowed_roles:
            return False
        if role == AGENT and not is_approved_agent(request.user):
            # Instance attributes: DRF reads them to build the 403 for this request only.
            self.message, self.code = _unapproved_agent_refusal(request.user)
            return False
        return True


def _unapproved_agent_refusal(user) -> tuple[str, str]:
    """Why an agent who is not approved is refused: rejected, when the caller object knows it, else waiting.

    A service that loads the user row (user_service) can tell a rejected agent; a token cannot,
    since none is ever issued to a rejected agent (see TokenUser.is_rejected).
    """
    if getattr(user, "is_rejected", False):
        return AGENT_REJECTED_MESSAGE, ErrorCode.AGENT_REJECTED
    return "Your agent account is waiting for an admin's approval.", ErrorCode.AGENT_NOT_APPROVED


class IsCustomer(_RolePermission):
    """Role customer."""

    allowed_roles = (CUSTOMER,)


class IsApprovedAgent(_RolePermission):
    """Role agent, approved by an admin."""

    allowed_roles = (AGENT,)


class IsAdmin(_RolePermission):
    """Role admin."""

    allowed_roles = (ADMIN,)


class IsAdminOrApprovedAgent(_RolePermission):
    """An admin, or an approved agent."""

    allowed_roles = (ADMIN, AGENT)


class IsAdminApprovedAgentOrCustomer(_RolePermission):
    """An admin, an approved agent or a customer (which objects a customer may see is the owning service's rule).

    One class rather than `IsAdminOrApprovedAgent | IsCustomer`: DRF's OR drops the inner
    code, so a waiting agent would get `permission_denied` instead of `agent_not_approved`.
    """

    allowed_roles = (ADMIN, AGENT, CUSTOMER)


class IsAgent(BasePermission):
    """Role agent, approved or not (to see their own status)."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        return _role(request) == AGENT


class HasServiceKey(BasePermission):
    """Service-to-service calls: the X-Service-Key header must match SERVICE_KEY."""

    message = "A valid service key is required."

    def has_permission(self, request, view) -> bool:
        sent = request.META.get("HTTP_X_SERVICE_KEY", "")
        expected = settings.SERVICE_KEY
        return bool(sent) and bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())
