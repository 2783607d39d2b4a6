"""Prototype for benchmarks/gateway_overhead.py: nginx forwards, the gateway only decides (`auth_request`).

nginx asks `GET /_check` before forwarding a request, passing the client's
headers (not its body) and the original method and URI in X-Original-Method /
X-Original-URI; this view runs the gateway's own edge checks on them (route,
bearer token or API key, rate limits: gateway.api's code, the JSON access log
and metrics as for a proxied request) and answers 200 with the RateLimit-*
headers, and the token to forward for an API key, for nginx to pass on.
auth_request knows only 2xx, 401 and 403: a refusal is 401 or 403, with the
gateway's status and envelope code in X-Check-Status / X-Check-Code for nginx
to turn into the envelope (not built: the benchmark measures the allowed path).

Not part of the product: run with DJANGO_SETTINGS_MODULE=benchmarks.proxy_candidates.edge_check_settings.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse
from django.urls import re_path

from gateway import metrics, ratelimit
from gateway.api import _caller, _Refused
from gateway.proxy import client_ip
from gateway.routing import OTHER_ROUTE, Route, metric_route, route_for


def check(request: HttpRequest) -> HttpResponse:
    """200 when nginx may forward the original request; 401/403 (with the gateway's verdict) when not."""
    started = time.perf_counter()
    method = request.META.get("HTTP_X_ORIGINAL_METHOD", "GET")
    route = route_for(method, request.META.get("HTTP_X_ORIGINAL_URI", ""))
    response = _verdict(request, method, route)
    metrics.observe(
        route=metric_route(route.path) if route else OTHER_ROUTE,
        method=method,
        status=response.status_code,
        upstream=route.upstream if route else "none",
        group="",
        seconds=time.perf_counter() - started,
    )
    return response


def _verdict(request: HttpRequest, method: str, route: Route | None) -> HttpResponse:
    if route is None:
        return _refused(404, "not_found")
    user_id, grant = None, None
    if not route.public:
        try:
            claims, grant = _caller(request)
        except _Refused as refused:
            status = refused.response.status_code
            return _refused(status, "not_authenticated" if status == 401 else "refused")
        user_id = claims.user_id
    key_limit = (grant.key_id, grant.rate_limit) if grant is not None else None
    address = client_ip(request)  # nginx's X-Forwarded-For (NUM_PROXIES=1)
    _limit, verdict = ratelimit.check(client_ip=address, user_id=user_id, login_email=None, api_key=key_limit)
    response = HttpResponse(status=200) if verdict.allowed else _refused(429, "rate_limited")
    for name, value in verdict.headers().items():
        response[name] = value
    if (authorization := getattr(request, "forward_authorization", None)) is not None:
        response["X-Forward-Authorization"] = authorization
    return response


def _refused(status: int, code: str) -> HttpResponse:
    response = HttpResponse(status=401 if status == 401 else 403)
    response["X-Check-Status"], response["X-Check-Code"] = str(status), code
    return response


urlpatterns = [re_path(r"^_check$", check)]
