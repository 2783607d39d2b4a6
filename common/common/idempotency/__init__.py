"""The Idempotency-Key request header for every service: a repeated write gets the first reply, not a second effect.

The defaults live here, free of Django, so the settings helper can name them.
"""

DEFAULT_KEY_TTL_SECONDS = 86_400  # a key replays for 24 hours after its first use (Stripe's lifetime)
DEFAULT_LOCK_SECONDS = 60  # a request still "running" after this long is taken for dead
MAX_KEY_LENGTH = 255  # the longest key accepted (Stripe's limit)
