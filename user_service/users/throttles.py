"""Login throttles: per client IP and per email, so neither a spray nor a focused guess goes far.

The per-email counter is keyed by a hash of the normalised email, so its cache
key has one size whatever a client sends; an email longer than any account's
(254 characters) gets no counter at all, and the login's validation refuses it.
"""

import hashlib

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from users.signin import challenge_user

EMAIL_MAX_LENGTH = 254  # as the login's serializer: a longer email is refused there, never counted


class _SettingsRateThrottle(SimpleRateThrottle):
    """Reads its rate when used, not at import, so an operator's (or a test's) setting applies."""

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class LoginPerIPThrottle(_SettingsRateThrottle):
    scope = "login_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginPerEmailThrottle(_SettingsRateThrottle):
    scope = "login_email"

    def email_of(self, request) -> str | None:
        email = request.data.get("email") if isinstance(request.data, dict) else None
        return email if isinstance(email, str) else None

    def get_cache_key(self, request, view):
        email = (self.email_of(request) or "").strip()
        if not email or len(email) > EMAIL_MAX_LENGTH:
            return None
        ident = hashlib.sha256(email.lower().encode("utf-8", "surrogatepass")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SecondFactorPerEmailThrottle(LoginPerEmailThrottle):
    """The second step counts against the same per-email limit as the password: codes are guesses too."""

    def email_of(self, request) -> str | None:
        challenge = request.data.get("challenge") if isinstance(request.data, dict) else None
        # The challenge names whose sign-in this is; an over-long one is no challenge (and gets no lookup).
        user = challenge_user(challenge) if isinstance(challenge, str) and len(challenge) <= 128 else None
        return user.email if user is not None else None


class SignedInCodePerEmailThrottle(LoginPerEmailThrottle):
    """A signed-in user's second-factor codes (confirm, disable, new recovery codes) count against their
    per-email login limit: a stolen access token alone may not guess codes, or the password, at will."""

    def email_of(self, request) -> str | None:
        user = getattr(request, "user", None)
        return user.email if user is not None and user.is_authenticated else None
