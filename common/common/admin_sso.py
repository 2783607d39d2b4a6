"""One admin identity: a service's Django admin signs in against user_service.

Services other than user_service keep no admin passwords. The admin login
form's username/password go to user_service's login endpoint; if the account
there has role admin, a local staff row (unusable password) mirrors it so
Django's admin and its log can refer to it.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from rest_framework.throttling import BaseThrottle

from common.errors import UpstreamUnavailable
from common.http import ServiceClient
from common.permissions import ADMIN

logger = logging.getLogger("lms.admin_sso")


def client_address(request) -> str:
    """The admin's address, which the sign-in limits count against: REMOTE_ADDR, the peer that connected.

    The admin site is reached on the service's own port, not through the gateway, so anyone can send
    X-Forwarded-For there; were it believed, every guess could claim a fresh address. It is read (its
    NUM_PROXIES-th entry from the right, as DRF's throttles take it) only when the peer is one of
    settings.ADMIN_TRUSTED_PROXIES, a proxy the operator put in front of the admin.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    if _is_trusted_proxy(remote, tuple(getattr(settings, "ADMIN_TRUSTED_PROXIES", ()))):
        return BaseThrottle().get_ident(request)
    return remote


@lru_cache(maxsize=64)
def _is_trusted_proxy(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(network, strict=False) for network in trusted)


@lru_cache(maxsize=1)
def _user_service() -> ServiceClient:
    return ServiceClient(settings.USER_SERVICE_URL, service_name="user_service", max_retries=0)


class UserServiceAdminBackend(BaseBackend):
    """Authenticates the admin site against user_service; only role admin gets in."""

    def authenticate(self, request, username: str | None = None, password: str | None = None, **kwargs):
        if not username or not password:
            return None
        try:
            response = _user_service().request(
                "POST",
                "/api/user/login",
                {"email": username, "password": password},
                # user_service throttles sign-ins per client address: the admin's, not this service's own,
                # or ten wrong guesses from anyone would lock every admin out of this admin site.
                headers={"X-Forwarded-For": client_address(request)} if request is not None else None,
            )
        except UpstreamUnavailable:
            logger.warning("admin sign-in impossible: user_service unavailable")
            return None
        if response.status != 200 or not isinstance(response.data, dict):
            return None
        account = response.data.get("data", {}).get("user", {})
        if account.get("role") != ADMIN:
            return None
        return self._mirror(account)

    def _mirror(self, account: dict):
        user_model = get_user_model()
        user, _ = user_model.objects.update_or_create(
            username=f"admin-{account['id']}",
            defaults={
                "email": account.get("email", ""),
                "first_name": account.get("first_name", ""),
                "last_name": account.get("last_name", ""),
                "is_staff": True,
                "is_superuser": True,
                "is_active": True,
            },
        )
        if user.has_usable_password():
            user.set_unusable_password()
            user.save(update_fields=["password"])
        return user

    def get_user(self, user_id):
        user_model = get_user_model()
        return user_model.objects.filter(pk=user_id, is_active=True, is_staff=True).first()


def remote_user_id(user) -> int:
    """The user_service id of an admin signed in through this backend (the mirror row's `admin-<id>`)."""
    prefix, _, number = user.get_username().partition("-")
    if prefix != "admin" or not number.isdigit():
        raise ValueError(f"{user.get_username()!r} did not sign in through user_service")
    return int(number)
