"""The gateway's routes: its own health and docs (Django Ninja), and the proxy for every service.

The proxy is a plain Django view that urls.py places before Ninja's routes:
it takes no parameters Ninja could validate and appears in no schema, and
Ninja's resolution, parameter model and response wrapping were about a tenth
of the CPU of a proxied request (README, "Performance").

Order of the checks on a proxied request, each refusing before any upstream is called:
method (405), route (404, /internal/ never), body size (413), token or API key (401), a login's email longer than
254 characters (400, before any rate-limit bucket is kept for it), rate limits (429).
"""

from __future__ import annotations

import json
import time
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema

from common.errors import ErrorCode, error_body, json_error
from common.tokens import Claims
from common.version import API_VERSION
from gateway import api_keys, edge_auth, metrics, openapi, ratelimit
from gateway import health as gateway_health
from gateway.body_deadline import body_deadline
from gateway.envelope import GatewayErrorCode
from gateway.health import ensure_health_checks
from gateway.metrics import is_internal
from gateway.proxy import client_ip, forward, raw_path
from gateway.routing import OTHER_ROUTE, Route, metric_route, route_for
from gateway.upstreams import upstreams

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # others: 405 in the envelope


class GatewayAPI(NinjaAPI):
    """Ninja's API whose OpenAPI document also lists every service's public paths."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """The gateway's own schema merged with every service's public paths."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        merged = openapi.merged(dict(schema))
        schema.clear()
        schema.update(merged)
        return schema


api = GatewayAPI(
    title="Loan Management System",
    version=API_VERSION,
    description="The public API: users, loans and notifications, through one gateway.",
    docs_url="/api/docs",
    openapi_url="/api/openapi.json",
    urls_namespace="gateway",
)


@api.get("/health/", include_in_schema=False)
@api.get("/health", tags=["gateway"], summary="Every service, from the background health checks")
def health(request: HttpRequest) -> JsonResponse:
    """200 when every service has an instance up (checked and breaker not open), 503 otherwise; calls no upstream."""
    status, body = gateway_health.aggregate()
    return _health_reply(request, status, body)


@api.get("/health/live/", include_in_schema=False)
@api.get("/health/live", tags=["gateway"], summary="Liveness probe: the process serves")
def live(request: HttpRequest) -> JsonResponse:
    """200 while the process answers; no upstream is asked, so one service down never restarts the gateway."""
    return JsonResponse({"status": "alive"})


@api.get("/health/ready/", include_in_schema=False)
@api.get("/health/ready", tags=["gateway"], summary="Readiness probe: configured and health-checked")
def ready(request: HttpRequest) -> JsonResponse:
    """200 once configured and the checker has run, whatever upstreams are down (their cached states in the body)."""
    status, body = gateway_health.readiness()
    return _health_reply(request, status, body)


def _health_reply(request: HttpRequest, status: int, body: dict[str, Any]) -> JsonResponse:
    """The whole body for the internal networks, only each service's up/down for anyone else; same status."""
    if not is_internal(client_ip(request), settings.METRICS_ALLOWED_NETWORKS):
        body = gateway_health.public_view(body)
    return JsonResponse(body, status=status)


def proxy(request: HttpRequest) -> HttpResponse:
    """Forward `/api/user|loan|notifications/...` after the edge checks; anything else is 404."""
    if request.method not in METHODS:
        return HttpResponseNotAllowed(METHODS)  # in the envelope by gateway.envelope
    ensure_health_checks()
    started = time.perf_counter()
    route = route_for(request.method or "GET", raw_path(request))
    if route is not None:
        response = _checked_forward(request, route)
    else:  # unknown prefix, /internal/, or a disguised path
        response = json_error(404, ErrorCode.NOT_FOUND, "Not found.")
    if (key_name := getattr(request, "api_key_name", None)) is not None:
        metrics.API_KEY_REQUESTS.labels(key_name, str(response.status_code)).inc()
    metrics.observe(
        route=metric_route(route.path) if route else OTHER_ROUTE,
        method=request.method or "",
        status=response.status_code,
        upstream=route.upstream if route else "none",
        group=getattr(request, "upstream_group", ""),
        seconds=time.perf_counter() - started,
    )
    return response


def _checked_forward(request: HttpRequest, route: Route) -> HttpResponse:
    try:
        body = _body_in_time(request)
    except BodyReadTimedOut:
        return _body_too_slow()
    if body is None:
        return json_error(413, ErrorCode.PAYLOAD_TOO_LARGE, "The request body is too large.")
    user_id, grant = None, None
    if not route.public:
        try:
            claims, grant = _caller(request)
        except _Refused as refused:
            return refused.response
        user_id = claims.user_id
        request.user_id = user_id
        request.user_role = claims.role
    login_email = _login_email(body) if route.is_login else None
    if login_email is not None and ratelimit.email_too_long(login_email):  # before any bucket: no key to keep
        return _email_too_long()
    key_limit = (grant.key_id, grant.rate_limit) if grant is not None else None
    limit, verdict = ratelimit.check(
        client_ip=client_ip(request), user_id=user_id, login_email=login_email, api_key=key_limit
    )
    if not verdict.allowed:
        metrics.RATE_LIMITED.labels(limit).inc()
        response = json_error(429, ErrorCode.RATE_LIMITED, "Too many requests. Slow down and retry later.")
    else:
        response = forward(request, upstreams()[route.upstream], body)
    if not _refused_by_upstream(response):  # a service's own 429 reaches the client with its own counts
        for name, value in verdict.headers().items():
            response[name] = value
    return response


class _Refused(Exception):
    """The caller's credentials are refused: `response` says why."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def _caller(request: HttpRequest) -> tuple[Claims, api_keys.Grant | None]:
    """Who calls: a bearer token's claims, or an API key's (with its grant, whose token is forwarded)."""
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    key = request.META.get("HTTP_X_API_KEY", "")
    if not key:
        try:
            claims, result = edge_auth.claims_of(authorization)
        except edge_auth.Unauthenticated as exc:
            metrics.TOKEN_VERIFICATIONS.labels(exc.result).inc()
            raise _Refused(_unauthenticated(ErrorCode.NOT_AUTHENTICATED, str(exc))) from exc
        metrics.TOKEN_VERIFICATIONS.labels(result).inc()
        return claims, None
    if authorization:
        message = "Send either an Authorization bearer token or an X-API-Key, not both."
        raise _Refused(json_error(400, ErrorCode.VALIDATION_ERROR, message))
    try:
        grant = api_keys.grant_for(key)
    except api_keys.InvalidApiKey:
        raise _Refused(
            _unauthenticated(ErrorCode.INVALID_API_KEY, "The API key is invalid, revoked or expired.")
        ) from None
    except api_keys.KeyCheckUnavailable:
        message = "API keys cannot be checked right now. Retry shortly."
        raise _Refused(json_error(503, ErrorCode.SERVICE_UNAVAILABLE, message)) from None
    request.forward_authorization = f"Bearer {grant.token}"
    request.api_key_id, request.api_key_name = grant.key_id, grant.name
    return grant.claims, grant


def _unauthenticated(code: str, message: str) -> HttpResponse:
    response = json_error(401, code, message)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _refused_by_upstream(response: HttpResponse) -> bool:
    """Whether this is a service's own 429 (user_service's login throttle), its Retry-After and RateLimit-* its own."""
    return response.status_code == 429 and getattr(response, "from_upstream", False)


class BodyReadTimedOut(Exception):
    """The client did not send its body within GATEWAY_BODY_READ_TIMEOUT."""


def _body_in_time(request: HttpRequest) -> bytes | None:
    """`_body_within_limit` under the body deadline (gateway.body_deadline): a stalled client frees its thread."""
    with body_deadline(request.META, settings.GATEWAY_BODY_READ_TIMEOUT) as watch:
        try:
            body = _body_within_limit(request)
        except OSError:  # the cut read ends in an error for a chunked body
            if watch is not None and watch.expired:
                raise BodyReadTimedOut from None
            raise
    if watch is not None and watch.expired:  # a Content-Length body ends short when cut
        raise BodyReadTimedOut
    return body


def _body_too_slow() -> HttpResponse:
    """408 in the envelope; the server then closes the connection, whose reading half is already shut."""
    return json_error(408, GatewayErrorCode.REQUEST_TIMEOUT, "The request body was not sent in time.")


def _body_within_limit(request: HttpRequest) -> bytes | None:
    """The body, or None when it is over the limit (declared or, for a chunked body, as read)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if declared > limit:
        return None
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # Django reads no body without a Content-Length; the server's input stream has it, de-chunked.
        stream: BinaryIO = request.META["wsgi.input"]
        body = stream.read(limit + 1)
        return body if len(body) <= limit else None
    try:
        whole: bytes = request.body
        return whole
    except RequestDataTooBig:
        return None


def _email_too_long() -> HttpResponse:
    """The 400 user_service would give an over-long login email, in the envelope, naming `email`."""
    message = f"Ensure this field has no more than {ratelimit.EMAIL_MAX_LENGTH} characters."
    return JsonResponse(
        error_body(ErrorCode.VALIDATION_ERROR, "The request is invalid.", {"email": [message]}), status=400
    )


def _login_email(body: bytes) -> str:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return ""
    return str(data.get("email", "")) if isinstance(data, dict) else ""
