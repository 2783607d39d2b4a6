"""record(): one audit row for one event, in the caller's transaction."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from common.correlation import get_correlation_id

SUCCESS = "success"
FAILURE = "failure"
MAX_DETAILS_BYTES = 4096  # a row says what happened, not the whole object: amounts and ids, no bodies
EVENT_PATTERN = re.compile(r"\A[a-z0-9_]+(\.[a-z0-9_]+)+\Z")  # "login.failed", "loan.written_off"


def record(
    event: str,
    *,
    request=None,
    actor_id: int | None = None,
    subject_type: str = "",
    subject_id: str | int = "",
    outcome: str = SUCCESS,
    reason: str = "",
    details: dict[str, Any] | None = None,
):
    """Write one AuditEvent of `event` now, inside the caller's transaction; returns it.

    Call it inside the `transaction.atomic()` of the change it records: the row then commits or
    rolls back with that change, exactly once, whatever the broker does. With `request`, the client's
    address (as DRF's throttles see it behind NUM_PROXIES proxies) and user agent are kept, and the
    actor defaults to the request's signed-in user. The correlation id is the current one (a request's
    or a task's). Arguments a service should never pass (an unknown outcome, a malformed event name,
    details too big to be a summary) raise ValueError rather than write a row nobody can read.
    """
    from common.audit.models import AuditEvent

    _check(event, outcome, details)
    return AuditEvent.objects.create(
        event=event,
        outcome=outcome,
        reason=reason[: AuditEvent._meta.get_field("reason").max_length],
        actor_id=actor_id if actor_id is not None else _user_id(request),
        subject_type=subject_type,
        subject_id="" if subject_id is None else str(subject_id),
        ip=client_ip(request),
        user_agent=_user_agent(request)[: AuditEvent._meta.get_field("user_agent").max_length],
        correlation_id=get_correlation_id(),
        details=details or {},
    )


def _check(event: str, outcome: str, details: dict | None) -> None:
    if not EVENT_PATTERN.match(event) or len(event) > 64:
        raise ValueError(f"An audit event is a dotted lowercase slug like 'loan.approved', not {event!r}.")
    if outcome not in (SUCCESS, FAILURE):
        raise ValueError(f"An audit outcome is {SUCCESS!r} or {FAILURE!r}, not {outcome!r}.")
    if details is not None and len(json.dumps(details, cls=DjangoJSONEncoder)) > MAX_DETAILS_BYTES:
        raise ValueError(f"Audit details are a summary of at most {MAX_DETAILS_BYTES} bytes of JSON.")


def client_ip(request) -> str | None:
    """The client's address as the services' throttles take it (the NUM_PROXIES-th X-Forwarded-For
    entry from the right, else REMOTE_ADDR); None without a request or when it is not an address."""
    if request is None:
        return None
    from rest_framework.throttling import BaseThrottle

    candidate = (BaseThrottle().get_ident(request) or "").strip()
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    # A zone id (fe80::1%eth0) is an address Python accepts and PostgreSQL's inet does not.
    return None if getattr(address, "scope_id", None) else str(address)


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "") if request is not None else ""


def _user_id(request) -> int | None:
    user = getattr(request, "user", None)
    return getattr(user, "id", None) if user is not None and user.is_authenticated else None
