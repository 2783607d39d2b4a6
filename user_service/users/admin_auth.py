"""user_service's own admin sign-in: the password here, and the second factor as the login API asks it.

The other services' admins sign in through user_service's login API (common.admin_sso); this site
checks the same rows directly, with the same answers on the form (common.admin_sso.Refusal).
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.db import transaction

from common.admin_sso import Refusal, refuse
from common.audit import record
from users import factors

ADMIN_SITE = {"channel": "admin_site"}


class SecondFactorModelBackend(ModelBackend):
    """Django's password check, then the TOTP or recovery code of a user who has (or must have) a factor."""

    def authenticate(self, request, username=None, password=None, otp_code: str | None = None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            if username and password:
                record(
                    "login.failed", request=request, outcome="failure", reason="wrong_credentials", details=ADMIN_SITE
                )
            return None
        subject = {"subject_type": "user", "subject_id": user.id}
        if not user.is_staff:  # the admin form would refuse them anyway: not a successful sign-in
            failed = {"outcome": "failure", "reason": "not_staff", "details": ADMIN_SITE}
            record("login.failed", request=request, **failed, **subject)
            return None
        if not factors.has_factor(user):
            if factors.role_needs_factor(user):
                refuse(request, Refusal.ENROLMENT_REQUIRED)
                record("login.failed", request=request, outcome="failure", reason="mfa_not_set_up", **subject)
                return None
            record("login.succeeded", request=request, actor_id=user.id, details=ADMIN_SITE, **subject)
            return user
        if not otp_code:
            refuse(request, Refusal.CODE_NEEDED)
            return None
        with transaction.atomic():
            method = factors.check_code(user, otp_code)
        if method is None:
            refuse(request, Refusal.WRONG_CODE)
            record("mfa.failed", request=request, outcome="failure", reason="wrong_code_at_sign_in", **subject)
            return None
        if method == "recovery_code":
            factors.record_recovery_use(user, request=request)
        record(
            "login.succeeded",
            request=request,
            actor_id=user.id,
            details={**ADMIN_SITE, "second_factor": method},
            **subject,
        )
        return user
