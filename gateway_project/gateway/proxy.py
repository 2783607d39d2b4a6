"""Forwarding one request to an instance of its upstream: faithful, bounded in time, retried only when safe."""

from __future__ import annotations

import logging
import random
import time

import urllib3
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from common.correlation import HEADER as CORRELATION_HEADER
from common.correlation import get_correlation_id
from common.errors import ErrorCode, json_error
from gateway.upstreams import Upstream

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
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-correlation-id",
}
NOT_RETURNED = HOP_BY_HOP | {"content-length", "x-correlation-id", "server", "date"}
RETRY_ON_STATUS = frozenset({502, 503, 504})
IDEMPOTENT_READS = frozenset({"GET", "HEAD"})


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the entry NUM_PROXIES trusted proxies put in X-Forwarded-For."""
    if settings.NUM_PROXIES:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= settings.NUM_PROXIES:
            return str(forwarded[-settings.NUM_PROXIES])
    return str(request.META.get("REMOTE_ADDR", ""))


def upstream_headers(request: HttpRequest) -> dict[str, str]:
    """The client's headers minus hop-by-hop ones and any X-User-*, plus X-Forwarded-* and the correlation id."""
    connection_named = {
        name.strip().lower() for name in request.headers.get("Connection", "").split(",") if name.strip()
    }
    headers = {
        name: value
        for name, value in request.headers.items()
        if name.lower() not in NOT_FORWARDED
        and name.lower() not in connection_named
        and not name.lower().startswith("x-user-")
    }
    previous = request.META.get("HTTP_X_FORWARDED_FOR", "") if settings.NUM_PROXIES else ""
    address = request.META.get("REMOTE_ADDR", "")
    headers["X-Forwarded-For"] = f"{previous}, {address}" if previous else address
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.get_host()
    headers[CORRELATION_HEADER] = get_correlation_id()
    return headers


def raw_path(request: HttpRequest) -> str:
    """The path and query exactly as the client sent them (gunicorn's RAW_URI), else Django's view of them."""
    raw = str(request.META.get("RAW_URI") or request.META.get("REQUEST_URI") or "")
    return raw if raw.startswith("/") else request.get_full_path()


def forward(request: HttpRequest, upstream: Upstream, body: bytes) -> HttpResponse:
    """Send the request to the next available instance; 503 / 504 / 502 in the envelope when that fails.

    Retries: any method when the connection could not be made (the service
    never saw the request); GET and HEAD also on 502/503/504; at most
    GATEWAY_MAX_RETRIES times with jittered backoff, within the deadline.
    """
    deadline = time.monotonic() + settings.GATEWAY_DEADLINE
    headers, path, method = upstream_headers(request), raw_path(request), request.method or "GET"
    failure = (503, ErrorCode.SERVICE_UNAVAILABLE, "is unavailable")  # what the last failed attempt means
    for attempt in range(settings.GATEWAY_MAX_RETRIES + 1):
        if attempt:
            _backoff(attempt, deadline)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _failure(504, ErrorCode.UPSTREAM_TIMEOUT, upstream, "did not answer in time")
        instance = upstream.pick()
        if instance is None:
            return _failure(503, ErrorCode.SERVICE_UNAVAILABLE, upstream, "is unavailable")
        request.upstream = f"{upstream.name} {instance.url}"
        timeout = urllib3.Timeout(
            connect=min(settings.GATEWAY_CONNECT_TIMEOUT, remaining), read=min(settings.GATEWAY_READ_TIMEOUT, remaining)
        )
        try:
            response = instance.pool.urlopen(
                method,
                path,
                body=body or None,
                headers=headers,
                timeout=timeout,
                retries=False,
                redirect=False,
                preload_content=True,
                decode_content=False,
                assert_same_host=False,
            )
        except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
            instance.breaker.record_failure()
            logger.warning("upstream unreachable", extra={"upstream_url": instance.url, "error": str(exc)})
            continue  # the request never reached the service: safe to try again, whatever the method
        except urllib3.exceptions.ReadTimeoutError:
            instance.breaker.record_failure()
            return _failure(504, ErrorCode.UPSTREAM_TIMEOUT, upstream, "did not answer in time")
        except urllib3.exceptions.HTTPError as exc:
            instance.breaker.record_failure()
            logger.warning("upstream failed mid-request", extra={"upstream_url": instance.url, "error": str(exc)})
            failure = (502, ErrorCode.BAD_UPSTREAM_RESPONSE, "gave no usable answer")
            if method in IDEMPOTENT_READS:
                continue
            return _failure(*failure[:2], upstream, failure[2])
        instance.breaker.record_success()
        if response.status in RETRY_ON_STATUS and method in IDEMPOTENT_READS and attempt < settings.GATEWAY_MAX_RETRIES:
            continue
        return _reply(response)
    return _failure(*failure[:2], upstream, failure[2])


def _backoff(attempt: int, deadline: float) -> None:
    delay = 0.05 * (2 ** (attempt - 1)) * (0.5 + random.random())  # noqa: S311 - jitter, not crypto
    time.sleep(max(0.0, min(delay, deadline - time.monotonic())))


def _reply(response: urllib3.BaseHTTPResponse) -> HttpResponse:
    reply = HttpResponse(response.data, status=response.status)
    reply.from_upstream = True  # its 405 is the service's, kept as it is
    for name, value in response.headers.items():
        if name.lower() not in NOT_RETURNED:
            reply[name] = value
    return reply


def _failure(status: int, code: str, upstream: Upstream, what: str) -> HttpResponse:
    """The envelope for a request the service could not answer; `what` completes "The <service> service ..."."""
    return json_error(status, code, f"The {upstream.name} service {what}. Try again shortly.")
