"""Middleware shared by every service."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from common import tracing
from common.correlation import (
    HEADER,
    META_KEY,
    accept_or_new,
    reset_correlation_id,
    set_correlation_id,
)
from common.errors import ErrorCode, json_error

access_log = logging.getLogger("lms.access")


class CorrelationIdMiddleware:
    """Takes X-Correlation-ID from the request or makes one; logs and returns it.

    Also writes one JSON access-log line per request (method, path, status,
    duration, user id), so every service logs requests the same way. While
    tracing, the request's span carries the id (`lms.correlation_id`), so the
    trace of a request a client reports by its id can be found.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        correlation_id = accept_or_new(request.META.get(META_KEY))
        token = set_correlation_id(correlation_id)
        tracing.annotate_current_span({"lms.correlation_id": correlation_id})
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[HEADER] = correlation_id
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user_id": getattr(getattr(request, "user", None), "id", None) or getattr(request, "user_id", None),
                    "upstream": getattr(request, "upstream", None),  # the gateway's; null when none was called
                },
            )
            return response
        finally:
            reset_correlation_id(token)


class BodySizeLimitMiddleware:
    """413 in the envelope for a body over DATA_UPLOAD_MAX_MEMORY_SIZE, before any view parses it.

    DRF reads the request as a stream and so skips Django's own size check;
    this puts it back for every body, declared length or not.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        too_big = limit is not None and declared > limit
        if not too_big and limit is not None and request.method in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                request.body  # noqa: B018 - reading enforces the limit for bodies without a length
            except RequestDataTooBig:
                too_big = True
        if too_big:
            return json_error(413, ErrorCode.PAYLOAD_TOO_LARGE, "The request body is too large.")
        return self.get_response(request)
