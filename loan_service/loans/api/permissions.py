"""Permissions of the loan API that common's role classes do not offer on their own."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from common.errors import ErrorCode
from common.permissions import ADMIN, AGENT, CUSTOMER, is_approved_agent


class IsAdminApprovedAgentOrCustomer(BasePermission):
    """An admin, an approved agent or a customer (which loans a customer sees is the selector's rule).

    One class, not `IsAdminOrApprovedAgent | IsCustomer`: DRF's OR drops the inner
    code, so a waiting agent got `permission_denied` here but `agent_not_approved`
    on every other endpoint.
    """

    message = "Your role does not allow this."
    code = ErrorCode.PERMISSION_DENIED

    def has_permission(self, request, view) -> bool:
        user = request.user
        role = getattr(user, "role", "") if user and user.is_authenticated else ""
        if role == AGENT and not is_approved_agent(user):
            # Instance attributes: DRF reads them to build the 403 for this request only.
            self.message = "Your agent account is waiting for an admin's approval."
            self.code = ErrorCode.AGENT_NOT_APPROVED
            return False
        return role in (ADMIN, AGENT, CUSTOMER)
