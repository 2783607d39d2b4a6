"""A resilient HTTP client for service-to-service calls.

Connect and read timeouts on every call, a circuit breaker per base URL, and
retries only for methods that are safe to repeat. A dependency that is down
raises `UpstreamUnavailable` (a 503 in the envelope), never a hang.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass

import urllib3

from common import tracing
from common.correlation import HEADER as CORRELATION_HEADER
from common.correlation import get_correlation_id
from common.errors import ErrorCode, UpstreamUnavailable

logger = logging.getLogger("lms.http")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UpstreamTimeout(UpstreamUnavailable):
    """The dependency accepted the call but did not answer in time."""

    code = ErrorCode.UPSTREAM_TIMEOUT
    default_message = "A service this request needs did not answer in time. Try again shortly."


class CircuitOpen(UpstreamUnavailable):
    """Calls are refused without trying: the dependency failed repeatedly just now."""


class CircuitBreaker:
    """Closed → open after `failure_threshold` consecutive failures → half-open after `reset_timeout`.

    In half-open one trial call is let through: success closes the circuit,
    failure opens it again for another `reset_timeout`.
    """

    def __init__(self, *, failure_threshold: int = 5, reset_timeout: float = 10.0, clock=time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """ "closed", "open" or "half_open"."""
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_timeout:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may be made now."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        """A call succeeded: close the circuit."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        """A call failed: count it, open the circuit at the threshold or after a failed trial."""
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_in_flight = False


@dataclass(frozen=True)
class JsonResponse:
    """What came back: status and the decoded JSON body (None when not JSON)."""

    status: int
    data: object


class ServiceClient:
    """Calls one service by base URL, with a shared connection pool and breaker."""

    def __init__(
        self,
        base_url: str,
        *,
        service_name: str,
        headers: dict[str, str] | None = None,
        connect_timeout: float = 1.0,
        read_timeout: float = 3.0,
        max_retries: int = 2,
        backoff: float = 0.05,
        breaker: CircuitBreaker | None = None,
        pool_size: int = 10,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.service_name = service_name
        self.headers = dict(headers or {})
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.max_retries = max_retries
        self.backoff = backoff
        self.breaker = breaker or CircuitBreaker()
        self._pool = urllib3.PoolManager(maxsize=pool_size, block=False)

    def get_json(self, path: str) -> JsonResponse:
        """GET `path` (retried on connection errors and 502/503/504)."""
        return self.request("GET", path)

    def request(
        self, method: str, path: str, body: dict | None = None, *, headers: dict[str, str] | None = None
    ) -> JsonResponse:
        """Call the service, with extra `headers` for this call.

        Raises UpstreamUnavailable, UpstreamTimeout or CircuitOpen.
        """
        method = method.upper()
        # Every method may retry a refused connection (the request never left); only safe ones retry the rest.
        attempts = 1 + self.max_retries
        last_error: UpstreamUnavailable | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto
            if not self.breaker.allow():
                raise CircuitOpen(details={"service": self.service_name})
            refused = False
            try:
                response = self._send(method, path, body, headers or {})
            except urllib3.exceptions.NewConnectionError as exc:  # caught before its base, ConnectTimeoutError
                last_error = self._failed(exc, UpstreamUnavailable)
                refused = True
            except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError) as exc:
                last_error = self._failed(exc, UpstreamTimeout)
            except urllib3.exceptions.HTTPError as exc:
                last_error = self._failed(exc, UpstreamUnavailable)
            else:
                if response.status not in (502, 503, 504):
                    self.breaker.record_success()
                    return JsonResponse(status=response.status, data=_decode(response.data))
                last_error = self._failed(RuntimeError(f"status {response.status}"), UpstreamUnavailable)
            if not refused and method not in SAFE_METHODS:
                break  # the service may have acted on it: an unsafe call is never repeated
        assert last_error is not None
        raise last_error

    def _send(self, method: str, path: str, body: dict | None, extra_headers: dict[str, str]):
        headers = {**self.headers, **extra_headers, "Accept": "application/json"}
        headers[CORRELATION_HEADER] = get_correlation_id()
        tracing.inject_trace_context(headers)  # the called service continues this trace
        encoded = None
        if body is not None:
            encoded = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return self._pool.request(
            method,
            f"{self.base_url}{path}",
            body=encoded,
            headers=headers,
            timeout=self.timeout,
            retries=False,
            redirect=False,
        )

    def _failed(self, exc: Exception, error_class: type[UpstreamUnavailable]) -> UpstreamUnavailable:
        self.breaker.record_failure()
        logger.warning("call to %s failed", self.service_name, extra={"error": f"{type(exc).__name__}: {exc}"})
        return error_class(details={"service": self.service_name})


def _decode(data: bytes):
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None
