"""API-key scopes: the catalogue, and the check every service runs on a token minted for an API key.

A person's token has no `api_key_id` and is not limited by scopes (roles
decide). A token user_service minted for an API key (docs/API.md, "API
keys") carries `api_key_id` and `scope`, the key's scopes separated by
spaces, and may call only the endpoints that name the scope they need:

    class LoanDetailView(APIView):
        required_scopes = {"GET": scopes.LOANS_READ}

An endpoint that names none refuses every API key (account, sessions, audit,
key management): a key never does more than it was made for. The owner's role
still applies on top, so a key can never exceed its owner either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import exceptions

from common.errors import ErrorCode

LOANS_READ = "loans:read"  # loans, schedules, history, ledger, statements, reports
LOANS_WRITE = "loans:write"  # request and edit loans, statements on demand
LOANS_DECIDE = "loans:decide"  # approve, reject, disburse, cancel, write off, reverse
REPAYMENTS_WRITE = "repayments:write"  # post repayments
NOTIFICATIONS_READ = "notifications:read"  # read notifications and mark them read
NOTIFICATIONS_SEND = "notifications:send"  # send notifications

ALL = (LOANS_READ, LOANS_WRITE, LOANS_DECIDE, REPAYMENTS_WRITE, NOTIFICATIONS_READ, NOTIFICATIONS_SEND)
INSUFFICIENT_SCOPE = ErrorCode.INSUFFICIENT_SCOPE


class InsufficientScope(exceptions.PermissionDenied):
    default_code = INSUFFICIENT_SCOPE


def granted(payload: Mapping[str, Any]) -> frozenset[str] | None:
    """The scopes of a token minted for an API key; None for a person's token, which scopes do not limit."""
    if payload.get("api_key_id") is None:
        return None
    return frozenset(str(payload.get("scope", "")).split())


def check(payload: Mapping[str, Any], view: Any, method: str) -> None:
    """Raise InsufficientScope (403) when an API key's token may not call `view` with `method`."""
    have = granted(payload)
    if have is None:
        return
    needed = (getattr(view, "required_scopes", None) or {}).get(method.upper())
    if method.upper() == "HEAD" and needed is None:
        needed = (getattr(view, "required_scopes", None) or {}).get("GET")
    if needed is None:
        raise InsufficientScope("API keys cannot call this endpoint.", code=INSUFFICIENT_SCOPE)
    if needed not in have:
        raise InsufficientScope(f"This API key lacks the scope {needed}.", code=INSUFFICIENT_SCOPE)


def check_request(request: Any, payload: Mapping[str, Any]) -> None:
    """`check` for a DRF request being authenticated: its view is in the parser context."""
    view = (getattr(request, "parser_context", None) or {}).get("view")
    check(payload, view, request.method or "GET")
