"""One admin identity: a service's Django admin signs in against user_service.

Services other than user_service keep no admin passwords. The admin login
form's email, password and authentication code go to user_service's login
endpoints (the password, then the second factor when user_service asks for
it); if the account there has role admin, a local staff row (unusable
password) mirrors it so Django's admin and its log can refer to it.

The mirror is not trusted for the whole session: AdminSessionMiddleware asks
user_service again (GET /internal/users/{id}, at most every
ADMIN_ACCOUNT_RECHECK_SECONDS) and ends the session when the account is
deactivated, no longer admin or gone; admin sessions also end after
ADMIN_SESSION_IDLE_SECONDS without a request and ADMIN_SESSION_MAX_SECONDS
after the sign-in, whatever happens.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import time
from functools import lru_cache
from importlib import import_module
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, authenticate, get_user_model, logout
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import escape
from rest_framework.throttling import BaseThrottle

from common.errors import UpstreamUnavailable
from common.http import CircuitBreaker, ServiceClient
from common.permissions import ADMIN, SERVICE_KEY_HEADER

logger = logging.getLogger("lms.admin_sso")

# user_service's error codes of the second sign-in step (the MFA contract of issue 14).
INVALID_MFA_CODE = "invalid_mfa_code"
MFA_CHALLENGE_INVALID = "mfa_challenge_invalid"
USER_NOT_FOUND = "user_not_found"


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
    """The sign-in client: user_service's public login API, never retried (a sign-in is not repeatable)."""
    return ServiceClient(settings.USER_SERVICE_URL, service_name="user_service", max_retries=0)


@lru_cache(maxsize=1)
def _user_directory() -> ServiceClient:
    """The re-check client: user_service's /internal/ lookup with the service key, short timeouts.

    Its own breaker: while user_service is down every admin request fails closed at once instead of
    waiting out a timeout each.
    """
    timeout = float(getattr(settings, "USER_SERVICE_TIMEOUT", 2.0))
    return ServiceClient(
        settings.USER_SERVICE_URL,
        service_name="user_service",
        headers={SERVICE_KEY_HEADER: settings.SERVICE_KEY},
        connect_timeout=min(1.0, timeout),
        read_timeout=timeout,
        max_retries=1,
        breaker=CircuitBreaker(failure_threshold=5, reset_timeout=5.0),
    )


@receiver(setting_changed)
def _reset_clients(*, setting: str, **kwargs) -> None:
    if setting in ("USER_SERVICE_URL", "SERVICE_KEY", "USER_SERVICE_TIMEOUT"):
        _user_service.cache_clear()
        _user_directory.cache_clear()


# --- the sign-in -----------------------------------------------------------------------------------


class Refusal(enum.Enum):
    """Why user_service refused a sign-in, when it says more than "wrong email or password"."""

    CODE_NEEDED = "Enter the authentication code from your authenticator app (or one of your recovery codes)."
    WRONG_CODE = "The authentication code is wrong or was already used. Enter the current code or a recovery code."
    CHALLENGE_DEAD = "Too many wrong authentication codes for this sign-in. Sign in again."
    ENROLMENT_REQUIRED = (
        "This admin account has no second factor yet, and admins must have one to sign in. Enrol an "
        "authenticator app first: POST /api/user/login, then POST /api/user/login/mfa/enrol with the "
        "challenge it returns, and confirm a first code with POST /api/user/login/mfa (docs/API.md)."
    )
    THROTTLED = "Too many sign-in attempts. Try again in a minute."
    UNAVAILABLE = "user_service, which checks every admin sign-in, cannot be reached. Try again shortly."


REFUSAL_ATTRIBUTE = "admin_sso_refusal"


def refuse(request, refusal: Refusal) -> None:
    """Tell the login form why (authenticate() itself can only say None)."""
    if request is not None:
        setattr(request, REFUSAL_ATTRIBUTE, refusal)


class UserServiceAdminBackend(BaseBackend):
    """Authenticates the admin site against user_service; only role admin gets in, with its second factor."""

    def authenticate(
        self, request, username: str | None = None, password: str | None = None, otp_code: str | None = None, **kwargs
    ):
        if not username or not password:
            return None
        # user_service throttles sign-ins (passwords and codes) per client address: the admin's, not this
        # service's own, or ten wrong guesses from anyone would lock every admin out of this admin site.
        headers = {"X-Forwarded-For": client_address(request)} if request is not None else None
        try:
            signed_in = self._sign_in(request, username, password, (otp_code or "").strip(), headers)
        except UpstreamUnavailable:
            logger.warning("admin sign-in impossible: user_service unavailable")
            refuse(request, Refusal.UNAVAILABLE)
            return None
        if signed_in is None:
            return None
        account = signed_in.get("user") or {}
        if account.get("role") != ADMIN or "id" not in account:
            return None
        return self._mirror(account)

    def _sign_in(self, request, email: str, password: str, code: str, headers) -> dict | None:
        """user_service's answer with the tokens and the account, after the second step if it asks for one."""
        reply = _user_service().request(
            "POST", "/api/user/login", {"email": email, "password": password}, headers=headers
        )
        answer = _data(reply)
        if answer is None:
            return refuse(request, Refusal.THROTTLED) if reply.status == 429 else None
        if answer.get("mfa_enrolment_required"):
            return refuse(request, Refusal.ENROLMENT_REQUIRED)
        if not answer.get("mfa_required"):
            return answer
        if not code:
            return refuse(request, Refusal.CODE_NEEDED)
        return self._second_step(request, answer.get("challenge", ""), code, headers)

    def _second_step(self, request, challenge: str, code: str, headers) -> dict | None:
        """The challenge and the code: the tokens and the account, or None (wrong codes count like passwords)."""
        reply = _user_service().request(
            "POST", "/api/user/login/mfa", {"challenge": challenge, "code": code}, headers=headers
        )
        confirmed = _data(reply)
        if confirmed is None:
            refusal = {INVALID_MFA_CODE: Refusal.WRONG_CODE, MFA_CHALLENGE_INVALID: Refusal.CHALLENGE_DEAD}.get(
                _error_code(reply), Refusal.THROTTLED if reply.status == 429 else None
            )
            if refusal is not None:
                refuse(request, refusal)
        return confirmed

    def _mirror(self, account: dict):
        user_model = get_user_model()
        user, _ = user_model.objects.update_or_create(
            username=mirror_username(account["id"]),
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


BACKEND_PATH = f"{UserServiceAdminBackend.__module__}.{UserServiceAdminBackend.__qualname__}"


def _data(reply) -> dict | None:
    """The `data` of a 200 in the envelope, else None."""
    if reply.status != 200 or not isinstance(reply.data, dict) or not isinstance(reply.data.get("data"), dict):
        return None
    return reply.data["data"]


def _error_code(reply) -> str | None:
    """The envelope's error code of a refusal, if it has one."""
    error = reply.data.get("error") if isinstance(reply.data, dict) else None
    return error.get("code") if isinstance(error, dict) else None


OTP_FIELD = "otp_code"


class AdminSignInForm(AdminAuthenticationForm):
    """Django's admin login form with the second factor: email, password and the authentication code.

    The code is optional on the form (an account without a factor has none to give); user_service decides
    whether it is needed, and the backend's refusal says so on the form.
    """

    otp_code = forms.CharField(
        label="Authentication code",
        required=False,
        max_length=32,
        strip=True,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            self.user_cache = authenticate(
                self.request, username=username, password=password, otp_code=self.cleaned_data.get(OTP_FIELD, "")
            )
            if self.user_cache is None:
                raise self._refusal()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data

    def _refusal(self) -> ValidationError:
        refusal = getattr(self.request, REFUSAL_ATTRIBUTE, None)
        if refusal is None:
            return self.get_invalid_login_error()
        return ValidationError(refusal.value, code=refusal.name.lower())


class SSOAdminSite(admin.AdminSite):
    """The admin site of a service without its own passwords: the sign-in form asks for the second factor."""

    login_form = AdminSignInForm


# --- the admin session -----------------------------------------------------------------------------

SIGNED_IN_AT = "admin_sso.signed_in_at"
SEEN_AT = "admin_sso.seen_at"
CHECKED_AT = "admin_sso.checked_at"  # when user_service last confirmed the admin
# The idle clock is written back at most this often: not a session save on every request.
SEEN_AT_RESOLUTION_SECONDS = 60


@receiver(user_logged_in)
def _stamp_session(sender, request, user, **kwargs) -> None:
    """The session's clocks start at the sign-in; this backend's sign-in has just asked user_service."""
    if request is None or not hasattr(request, "session"):
        return
    now = time.time()
    request.session[SIGNED_IN_AT] = now
    request.session[SEEN_AT] = now
    if request.session.get(BACKEND_SESSION_KEY) == BACKEND_PATH:
        request.session[CHECKED_AT] = now


class AccountCheck(enum.Enum):
    """What user_service says of a mirrored admin now."""

    ADMIN = "admin"
    SHUT_OUT = "shut out"  # deactivated, role changed or gone
    UNKNOWN = "unknown"  # user_service did not answer usefully


def check_account(user_id: int) -> AccountCheck:
    """Ask user_service (/internal/, service key) whether `user_id` is still an active admin."""
    try:
        reply = _user_directory().get_json(f"/internal/users/{int(user_id)}")
    except UpstreamUnavailable:
        return AccountCheck.UNKNOWN
    if reply.status == 404 and _error_code(reply) == USER_NOT_FOUND:
        return AccountCheck.SHUT_OUT
    account = _data(reply)
    if account is None:
        return AccountCheck.UNKNOWN
    if account.get("role") == ADMIN and account.get("is_active") is True:
        return AccountCheck.ADMIN
    return AccountCheck.SHUT_OUT


class AdminSessionMiddleware:
    """Ends admin sessions that outlived their limits or their account; after AuthenticationMiddleware.

    Every signed-in session (only the Django admin signs in with a session; the API uses tokens):
    - past ADMIN_SESSION_MAX_SECONDS since the sign-in, or idle ADMIN_SESSION_IDLE_SECONDS: signed out,
      back to the admin login;
    - signed in through UserServiceAdminBackend: user_service is asked again once its last answer is older
      than ADMIN_ACCOUNT_RECHECK_SECONDS. Deactivated, no longer admin or gone: the mirror is deactivated
      and its sessions ended. No answer: this request is refused with a 503 (fail closed) and user_service
      is asked again on the next one; the session itself stays, it is not known to be bad.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refused = self._refusal(request)
        if refused is not None:
            return refused
        return self.get_response(request)

    def _refusal(self, request) -> HttpResponse | None:
        session = getattr(request, "session", None)
        # Checked first: a request without a signed-in session (every API call) loads no user.
        if session is None or SESSION_KEY not in session or not request.user.is_authenticated:
            return None
        now = time.time()
        expired = _session_limit_passed(session, now)
        if expired is not None:
            return _sign_out(request, expired)
        if (
            session.get(BACKEND_SESSION_KEY) == BACKEND_PATH
            and now - session.get(CHECKED_AT, 0) >= settings.ADMIN_ACCOUNT_RECHECK_SECONDS
        ):
            refused = _recheck(request, now)
            if refused is not None:
                return refused
        if now - session.get(SEEN_AT, 0) >= SEEN_AT_RESOLUTION_SECONDS:
            session[SEEN_AT] = now
        return None


def _recheck(request, now: float) -> HttpResponse | None:
    """Ask user_service about the signed-in mirror: None to go on, else the answer that ends the request."""
    user_id = remote_user_id(request.user)
    verdict = check_account(user_id)
    if verdict is AccountCheck.ADMIN:
        request.session[CHECKED_AT] = now
        return None
    if verdict is AccountCheck.SHUT_OUT:
        logger.warning("admin session ended: no active admin in user_service", extra={"user_id": user_id})
        deactivate_mirror(user_id)
        return _sign_out(request, "Your admin account is no longer active in user_service: you were signed out.")
    logger.warning("admin request refused: user_service cannot confirm the admin", extra={"user_id": user_id})
    return _unconfirmed()


def _session_limit_passed(session, now: float) -> str | None:
    """Why this session is over (its absolute or its idle limit), or None."""
    signed_in_at = session.get(SIGNED_IN_AT)
    if signed_in_at is None or now - signed_in_at >= settings.ADMIN_SESSION_MAX_SECONDS:
        return f"Admin sessions last {settings.ADMIN_SESSION_MAX_SECONDS / 3600:g} hours at most: sign in again."
    if now - session.get(SEEN_AT, signed_in_at) >= settings.ADMIN_SESSION_IDLE_SECONDS:
        minutes = settings.ADMIN_SESSION_IDLE_SECONDS / 60
        return f"You were signed out after {minutes:g} minutes without activity: sign in again."
    return None


def _sign_out(request, why: str) -> HttpResponse:
    """End the session and send the browser to the admin login, which shows `why`."""
    logout(request)
    messages.warning(request, why)
    try:
        login = reverse("admin:login")
    except NoReverseMatch:
        login = "/admin/login/"
    return HttpResponseRedirect(f"{login}?{urlencode({'next': request.get_full_path()})}")


def _unconfirmed() -> HttpResponse:
    """The fail-closed answer while user_service cannot confirm the admin's account."""
    text = (
        "The admin is unavailable: user_service, which confirms every admin's account, cannot be reached. "
        "Try again shortly; nothing was changed."
    )
    response = HttpResponse(
        f"<!doctype html><title>Admin unavailable</title><h1>Admin unavailable</h1><p>{escape(text)}</p>",
        status=503,
        content_type="text/html; charset=utf-8",
    )
    response["Retry-After"] = "5"
    return response


# --- mirrors ---------------------------------------------------------------------------------------


def remote_user_id(user) -> int:
    """The user_service id of an admin signed in through this backend (the mirror row's `admin-<id>`)."""
    prefix, _, number = user.get_username().partition("-")
    if prefix != "admin" or not number.isdigit():
        raise ValueError(f"{user.get_username()!r} did not sign in through user_service")
    return int(number)


def mirror_username(user_id: int) -> str:
    """The local staff row that stands for user_service's admin `user_id`."""
    return f"admin-{int(user_id)}"


def deactivate_mirror(user_id: int) -> bool:
    """Shut user_service's admin `user_id` out of this service's admin: mirror inactive, its sessions ended.

    Called when user_service says the account is deactivated, no longer admin or gone (the user.deactivated
    event, or the per-request re-check). The row is kept, not deleted: the admin log and the history refer
    to it. True when an active mirror was deactivated or a session of it was ended; False when there was
    nothing to do (no mirror, already shut out), so that a repeated event changes nothing.
    """
    user = get_user_model().objects.filter(username=mirror_username(user_id)).first()
    if user is None:
        return False
    changed = user.is_active
    if changed:
        user.is_active = False
        user.save(update_fields=["is_active"])
    ended = end_sessions(user)
    if changed or ended:
        logger.info("admin mirror deactivated", extra={"user_id": user_id, "sessions_ended": ended})
    return changed or ended > 0


def end_sessions(user) -> int:
    """Delete the stored sessions this backend signed `user` in with; how many there were.

    Only database-backed session engines can be searched by user. With any other engine the sessions
    stay stored but are dead anyway: get_user() refuses an inactive mirror, so they load as anonymous.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store, "get_model_class"):
        return 0
    ended = 0
    for session in store.get_model_class().objects.filter(expire_date__gt=timezone.now()).iterator():
        data = store().decode(session.session_data)
        if data.get(SESSION_KEY) == str(user.pk) and data.get(BACKEND_SESSION_KEY) == BACKEND_PATH:
            store(session.session_key).delete()  # through the store: cached_db forgets its cached copy too
            ended += 1
    return ended
