"""The edge check of access tokens, with user_service's public keys only (JWKS, cached, cool-down).

A token that verified once is remembered (by its exact text, signature
included) until it expires or for GATEWAY_TOKEN_CACHE_SECONDS, whichever
comes first, so a client's repeated requests skip the RSA check; `exp` is
still enforced on every request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings

from common.authentication import bearer_token, get_verifier
from common.tokens import Claims, InvalidToken


class Unauthenticated(Exception):
    """No usable token: the reason is safe to show; `result` names it in a word (missing, expired, ...)."""

    def __init__(self, reason: str, *, result: str) -> None:
        super().__init__(reason)
        self.result = result


class VerifiedTokens:
    """A bounded memory of tokens that passed verification, each until min(exp, now + ttl)."""

    def __init__(self, *, capacity: int, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._entries: OrderedDict[str, tuple[float, Claims]] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, token: str) -> Claims | None:
        """The remembered claims of `token`, or None if unknown or no longer valid."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return entry[1]

    def put(self, token: str, claims: Claims) -> None:
        """Remember a token that has just been verified."""
        if self._capacity <= 0 or self._ttl <= 0:
            return
        valid_until = min(float(claims.expires_at), self._clock() + self._ttl)
        with self._lock:
            self._entries[token] = (valid_until, claims)
            self._entries.move_to_end(token)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


@lru_cache(maxsize=1)
def verified_tokens() -> VerifiedTokens:
    """This process's memory of verified tokens."""
    return VerifiedTokens(capacity=settings.GATEWAY_TOKEN_CACHE_SIZE, ttl=settings.GATEWAY_TOKEN_CACHE_SECONDS)


def claims_of(authorization: str) -> tuple[Claims, str]:
    """The verified claims of an `Authorization: Bearer` access token, and whether it was verified now
    ("valid") or earlier ("cached"); raises Unauthenticated, whose `result` says why not.

    The results are gateway_token_verifications_total's labels (counted by the caller, gateway.api).
    """
    if not authorization:
        raise Unauthenticated("Authentication credentials were not provided.", result="missing")
    token = bearer_token(authorization)
    if token is None:
        raise Unauthenticated("Authorization header must be 'Bearer <token>'.", result="malformed_header")
    remembered = verified_tokens().get(token)
    if remembered is not None:
        return remembered, "cached"
    try:
        claims = get_verifier().verify(token, expected_type="access")
    except InvalidToken as exc:
        raise Unauthenticated(exc.reason, result=exc.kind) from exc
    verified_tokens().put(token, claims)
    return claims, "valid"
