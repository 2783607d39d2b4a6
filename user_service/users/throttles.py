"""Login throttles: per client IP and per email, so neither a spray nor a focused guess goes far.

The per-email counter is keyed by a hash of the normalised email, so its cache
key has one size whatever a client sends; an email longer than any account's
(254 characters) gets no counter at all, and the login's validation refuses it.
"""

import hashlib

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

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

    def get_cache_key(self, request, view):
        email = request.data.get("email") if isinstance(request.data, dict) else None
        if not isinstance(email, str) or not email.strip() or len(email.strip()) > EMAIL_MAX_LENGTH:
            return None
        ident = hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
