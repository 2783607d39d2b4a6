"""Forwarding one request to an instance of its upstream: faithful, bounded in time, retried only when safe."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from common import tracing
from common.correlation import HEADER as CORRELATION_HEADER
from common.correlation import get_correlation_id
from common.errors import ErrorCode, json_error
from gateway.connections import Answer, Broken, TimedOut, TooLarge, Unreachable
from gateway.forward_spans import traced_attempt
from gateway.upstreams import Instance, Upstream

logger = logging.getLogger("lms.gateway")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)
NOT_FORWARDED = HOP_BY_HOP | {
    "host",
    "content-length",
    "x-service-key",
    "x-api-key",  # exchanged at the edge for a token (gateway.api_keys): no service ever sees a key
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-correlation-id",
}
# A client's trace context goes upstream only when it is trusted; while tracing, each attempt sends its own.
NOT_FORWARDED_WITH_TRACE_CONTEXT = NOT_FORWARDED | set(tracing.TRACE_HEADERS)
NOT_RETURNED = HOP_BY_HOP | {"x-correlation-id", "server", "date"}
RETRY_ON_STATUS = frozenset({502, 503, 504})
IDEMPOTENT_READS = frozenset({"GET", "HEAD"})
FORWARDED_PROTOS = frozenset({"http", "https"})


@dataclass(frozen=True)
class Failure:
    """Why no upstream answer is returned: the status and code of the envelope, and "The <service> service <what>"."""

    status: int
    code: str
    what: str
    transient: bool = True  # whether "Try again shortly." is worth saying


UNAVAILABLE = Failure(503, ErrorCode.SERVICE_UNAVAILABLE, "is unavailable")
TIMED_OUT = Failure(504, ErrorCode.UPSTREAM_TIMEOUT, "did not answer in time")
BAD_ANSWER = Failure(502, ErrorCode.BAD_UPSTREAM_RESPONSE, "gave no usable answer")
TOO_LARGE = Failure(
    502, ErrorCode.UPSTREAM_REPLY_TOO_LARGE, "answered with more than the gateway passes on", transient=False
)


class AttemptFailed(Exception):
    """One attempt got no answer; `retry_safe` when trying again cannot repeat an effect."""

    def __init__(self, failure: Failure, *, retry_safe: bool) -> None:
        super().__init__(failure.what)
        self.failure = failure
        self.retry_safe = retry_safe


def _trusted_forwarded(request: HttpRequest, meta_key: str, *, first_if_short: bool = False) -> str | None:
    """The entry the NUM_PROXIES-th trusted proxy put in a comma-separated X-Forwarded-* header (`meta_key`).

    Counted from the right, where each proxy appends; anything further left is
    the client's word. None when no proxy is trusted or the header is empty; when
    it has fewer entries than NUM_PROXIES, None too, or its first entry with
    `first_if_short` (for a header some proxies set rather than append to).
    """
    if not settings.NUM_PROXIES:
        return None
    entries = [part.strip() for part in str(request.META.get(meta_key, "")).split(",") if part.strip()]
    if len(entries) >= settings.NUM_PROXIES:
        return entries[-settings.NUM_PROXIES]
    return entries[0] if entries and first_if_short else None


def client_ip(request: HttpRequest) -> str:
    """The client's address: the trusted proxy's entry in X-Forwarded-For, else REMOTE_ADDR."""
    return _trusted_forwarded(request, "HTTP_X_FORWARDED_FOR") or str(request.META.get("REMOTE_ADDR", ""))


def _connection_named(values: list[str]) -> set[str]:
    """The header names a Connection header lists: hop-by-hop for this one connection."""
    return {name.strip().lower() for value in values for name in value.split(",") if name.strip()}


def forwarded_proto(request: HttpRequest) -> str:
    """The client's scheme: the trusted proxy's X-Forwarded-Proto when it is http(s), else this request's."""
    trusted = (_trusted_forwarded(request, "HTTP_X_FORWARDED_PROTO", first_if_short=True) or "").lower()
    return trusted if trusted in FORWARDED_PROTOS else request.scheme or "http"


def upstream_headers(request: HttpRequest) -> dict[str, str]:
    """The client's headers minus hop-by-hop ones and any X-User-*, plus X-Forwarded-* and the correlation id.

    Read from META in one pass, named as Django's `request.headers` names them
    (a third of the cost of going through it, on every proxied request).
    """
    meta = request.META
    connection_named = _connection_named([meta.get("HTTP_CONNECTION", "")])
    passes_trace_context = settings.OTEL_TRUST_INCOMING_TRACEPARENT and not tracing.ENABLED
    not_forwarded = NOT_FORWARDED if passes_trace_context else NOT_FORWARDED_WITH_TRACE_CONTEXT
    headers = {}
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.replace("_", "-").lower()
        else:
            continue
        if name not in not_forwarded and name not in connection_named and not name.startswith("x-user-"):
            headers[name.title()] = value
    previous = meta.get("HTTP_X_FORWARDED_FOR", "") if settings.NUM_PROXIES else ""
    address = meta.get("REMOTE_ADDR", "")
    headers["X-Forwarded-For"] = f"{previous}, {address}" if previous else address
    headers["X-Forwarded-Proto"] = forwarded_proto(request)
    headers["X-Forwarded-Host"] = request.get_host()
    headers[CORRELATION_HEADER] = get_correlation_id()
    if (authorization := getattr(request, "forward_authorization", None)) is not None:
        headers["Authorization"] = authorization  # the token minted for the client's API key
    return headers


def raw_path(request: HttpRequest) -> str:
    """The path and query exactly as the client sent them (gunicorn's RAW_URI), else Django's view of them."""
    raw = str(request.META.get("RAW_URI") or request.META.get("REQUEST_URI") or "")
    return raw if raw.startswith("/") else request.get_full_path()


def routing_identity(request: HttpRequest) -> int | str:
    """Who the client is for weighted routing: its API key, else the signed-in user, else its address."""
    if (key_id := getattr(request, "api_key_id", None)) is not None:
        return f"key:{key_id}"
    user_id = getattr(request, "user_id", None)
    return user_id if isinstance(user_id, int) else f"ip:{client_ip(request)}"


def wants_canary(request: HttpRequest) -> bool:
    """`X-Canary: always` from an admin: the newest group of every upstream; ignored from anyone else."""
    asked = str(request.META.get("HTTP_X_CANARY", "")).strip().lower() == "always"
    return asked and getattr(request, "user_role", None) == "admin"


def forward(request: HttpRequest, upstream: Upstream, body: bytes) -> HttpResponse:
    """Send the request to the next available instance; 503 / 504 / 502 in the envelope when that fails.

    Retries: any method when the connection could not be made (the service
    never saw the request); GET and HEAD also on 502/503/504; at most
    GATEWAY_MAX_RETRIES times with jittered backoff. Everything, every byte
    read included, ends by the overall GATEWAY_DEADLINE.
    """
    until = time.monotonic() + settings.GATEWAY_DEADLINE
    method = request.method or "GET"
    send = partial(_send, method=method, path=raw_path(request), body=body or None)
    headers = upstream_headers(request)
    failure = UNAVAILABLE  # what the last failed attempt means
    tried: set[Instance] = set()  # instances this request failed on: another is taken first, if there is one
    for attempt in range(settings.GATEWAY_MAX_RETRIES + 1):
        if attempt:
            _backoff(attempt, until)
        if time.monotonic() >= until:
            return _failure(TIMED_OUT, upstream)
        picked = upstream.pick(routing_identity(request), canary=wants_canary(request), avoid=tried)
        if picked is None:
            return _failure(UNAVAILABLE, upstream)
        group, instance = picked
        request.upstream = f"{upstream.name} {instance.url}"
        request.upstream_group = group.name
        try:
            if tracing.ENABLED:
                answer = traced_attempt(
                    send, instance, upstream=upstream.name, attempt=attempt + 1, headers=headers, until=until
                )
            else:
                answer = send(instance, until=until, headers=headers)
        except AttemptFailed as failed:
            if not failed.retry_safe:
                return _failure(failed.failure, upstream)
            failure = failed.failure
            tried.add(instance)
            continue
        last = attempt == settings.GATEWAY_MAX_RETRIES
        if answer.status in RETRY_ON_STATUS and method in IDEMPOTENT_READS and not last:
            tried.add(instance)
            continue
        return UpstreamReply(answer)
    return _failure(failure, upstream)


def _send(
    instance: Instance, *, until: float, method: str, path: str, headers: dict[str, str], body: bytes | None
) -> Answer:
    """One attempt on one instance, its outcome counted by the instance's breaker (see `instance_failed`)."""
    connect = max(min(settings.GATEWAY_CONNECT_TIMEOUT, until - time.monotonic()), 0.001)
    try:
        answer = instance.connections.exchange(
            method,
            path,
            headers=headers,
            body=body,
            connect=connect,
            read=settings.GATEWAY_READ_TIMEOUT,
            until=until,
            max_body=settings.GATEWAY_MAX_UPSTREAM_BYTES,
        )
    except Unreachable as exc:
        instance.breaker.record_failure()
        logger.warning("upstream unreachable", extra={"upstream_url": instance.url, "error": str(exc)})
        raise AttemptFailed(UNAVAILABLE, retry_safe=True) from exc  # the service never saw the request
    except TimedOut as exc:
        instance.breaker.record_failure()
        raise AttemptFailed(TIMED_OUT, retry_safe=False) from exc
    except Broken as exc:
        instance.breaker.record_failure()
        logger.warning("upstream failed mid-request", extra={"upstream_url": instance.url, "error": str(exc)})
        raise AttemptFailed(BAD_ANSWER, retry_safe=method in IDEMPOTENT_READS) from exc
    except TooLarge as exc:  # the instance works (no breaker failure); any instance would answer the same
        instance.breaker.record_success()
        logger.warning("upstream answer too large", extra={"upstream_url": instance.url, "error": str(exc)})
        raise AttemptFailed(TOO_LARGE, retry_safe=False) from exc
    if instance_failed(answer):
        instance.breaker.record_failure()  # an instance answering 503 for ever must open its breaker
    else:
        instance.breaker.record_success()
    return answer


def instance_failed(answer: Answer) -> bool:
    """Whether an answer counts against the instance: 502, 504, and 503 unless it blames a service behind it.

    A service answers 503 `service_unavailable` in its envelope when one of ITS
    dependencies is down (loan_service without user_service): the instance
    itself works, and opening its breaker would cut off everything it can
    still serve. Any other 503 (`database_unavailable`, or no envelope) counts.
    """
    if answer.status not in RETRY_ON_STATUS:
        return False
    return answer.status != 503 or _error_code(answer.body) != ErrorCode.SERVICE_UNAVAILABLE


def _error_code(body: bytes) -> str | None:
    """The `error.code` of a body in the error envelope, else None."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, compressed, or nested beyond reason
        return None
    error = data.get("error") if isinstance(data, dict) and data.get("success") is False else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _backoff(attempt: int, until: float) -> None:
    delay = 0.05 * (2 ** (attempt - 1)) * (0.5 + random.random())  # noqa: S311 - jitter, not crypto
    time.sleep(max(0.0, min(delay, until - time.monotonic())))


class UpstreamReply(HttpResponse):
    """The upstream's answer as it came: no Content-Type of Django's added, repeated headers (Set-Cookie) all kept.

    Django keeps one value per header name; the repeats are given to the
    server through items(), which Django's WSGI and ASGI handlers send. The
    body is read whole and undecoded, so the upstream's Content-Length stays
    true (for HEAD too); a body the upstream sent chunked gets its length. With
    a length the server writes the body as it is, not re-chunked.
    """

    from_upstream = True  # its 405 is the service's, kept as it is (gateway.envelope)

    def __init__(self, answer: Answer) -> None:
        connection_named = _connection_named(answer.all("Connection"))
        first: dict[str, str] = {}  # the first value of each name, as Django keeps them
        seen: set[str] = set()
        self.repeated: list[tuple[str, str]] = []
        for name, value in answer.headers:
            lowered = name.lower()
            if lowered in NOT_RETURNED or lowered in connection_named:
                continue
            if lowered in seen:
                self.repeated.append((name, value))
            else:
                seen.add(lowered)
                first[name] = value
        if answer.body and "content-length" not in seen:
            first["Content-Length"] = str(len(answer.body))
        super().__init__(answer.body, status=answer.status, headers=first)
        if "content-type" not in seen:
            del self["Content-Type"]  # Django's default, which the upstream did not send

    def items(self) -> Iterable[tuple[str, str]]:
        return [*super().items(), *((name, value) for name, value in self.repeated if self.has_header(name))]


def _failure(failure: Failure, upstream: Upstream) -> HttpResponse:
    """The envelope for a request the service could not answer."""
    hint = " Try again shortly." if failure.transient else ""
    return json_error(failure.status, failure.code, f"The {upstream.name} service {failure.what}.{hint}")
