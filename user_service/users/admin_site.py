"""The admin site of user_service: its sign-in form is throttled like the login API.

Every service's admin signs in against user_service, here through this form
and elsewhere through the login API (common.admin_sso). Both paths count
against the same per-address and per-email limits, so the admin form is no
way around them.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from common.admin_sso import AdminSignInForm, client_address
from users.throttles import LoginPerEmailThrottle, LoginPerIPThrottle


def refused_sign_in_wait(request: HttpRequest) -> float | None:
    """Seconds to wait when this sign-in attempt is over a login limit, else None (the attempt is counted)."""
    # The admin's own address (REMOTE_ADDR unless a trusted proxy's): a forged X-Forwarded-For on this
    # port would otherwise give every guess a fresh per-address count.
    attempt = SimpleNamespace(
        META={"REMOTE_ADDR": client_address(request)}, data={"email": request.POST.get("username", "")}
    )
    waits = []
    for throttle in (LoginPerIPThrottle(), LoginPerEmailThrottle()):
        if not throttle.allow_request(attempt, None):
            waits.append(throttle.wait() or 1.0)
    return max(waits) if waits else None


class ThrottledAdminSite(admin.AdminSite):
    """Django's admin site with the login API's sign-in limits, and its second factor, on its login form."""

    login_form = AdminSignInForm  # email, password and the authentication code (users.admin_auth checks it)

    def login(self, request, extra_context=None):
        if request.method == "POST":
            wait = refused_sign_in_wait(request)
            if wait is not None:
                seconds = int(wait) + 1
                response = HttpResponse(
                    f"Too many sign-in attempts. Try again in {seconds} seconds.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(seconds)
                return response
        return super().login(request, extra_context)
