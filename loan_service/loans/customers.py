"""Asking user_service whether an id is an existing customer (its /internal/ API, with the service key)."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.core.signals import setting_changed

from common.errors import InvalidInput, UpstreamUnavailable
from common.http import CircuitBreaker, ServiceClient
from common.permissions import CUSTOMER, SERVICE_KEY_HEADER


@lru_cache(maxsize=1)
def user_service() -> ServiceClient:
    """One pooled client per process, with its own circuit breaker."""
    return ServiceClient(
        settings.USER_SERVICE_URL,
        service_name="user_service",
        headers={SERVICE_KEY_HEADER: settings.SERVICE_KEY},
        connect_timeout=min(1.0, settings.USER_SERVICE_TIMEOUT),
        read_timeout=settings.USER_SERVICE_TIMEOUT,
        max_retries=1,
        breaker=CircuitBreaker(failure_threshold=5, reset_timeout=5.0),
    )


def _reset(*, setting: str, **kwargs) -> None:
    if setting in ("USER_SERVICE_URL", "SERVICE_KEY", "USER_SERVICE_TIMEOUT"):
        user_service.cache_clear()


setting_changed.connect(_reset)


# user_service's error code for an unknown user id (users.errors.UserErrorCode.USER_NOT_FOUND).
USER_NOT_FOUND = "user_not_found"


def _is_user_not_found(reply) -> bool:
    """user_service's own "no such user": a 404 in its envelope with its code.

    Any other 404 (a wrong USER_SERVICE_URL, a proxy, a renamed path) says nothing
    about the customer, and reading it as "no customer" would turn every create into a 400.
    """
    if reply.status != 404 or not isinstance(reply.data, dict) or reply.data.get("success") is not False:
        return False
    error = reply.data.get("error")
    return isinstance(error, dict) and error.get("code") == USER_NOT_FOUND


def ensure_customer(customer_id: int) -> None:
    """Raise InvalidInput on `customer_id` unless it is an active customer; UpstreamUnavailable if we cannot tell."""
    reply = user_service().get_json(f"/internal/users/{int(customer_id)}")
    if _is_user_not_found(reply):
        raise InvalidInput.on("customer_id", "No customer has this id.")
    if reply.status != 200 or not isinstance(reply.data, dict):
        raise UpstreamUnavailable(details={"service": "user_service", "status": reply.status})
    user = reply.data.get("data") or {}
    if user.get("role") != CUSTOMER or not user.get("is_active", False):
        raise InvalidInput.on("customer_id", "This user is not an active customer.")
