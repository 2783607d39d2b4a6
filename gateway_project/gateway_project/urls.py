"""The gateway's URLs: /metrics, the docs, the proxy of every service, then the Ninja API (health)."""

from functools import partial

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path
from ninja.openapi.views import openapi_json, openapi_view

from common.errors import ErrorCode, json_error
from gateway.api import api, proxy
from gateway.health import ensure_health_checks
from gateway.metrics import exposition, is_internal
from gateway.proxy import client_ip


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of the gateway's metrics (every worker's, under gunicorn); internal clients only."""
    if not is_internal(client_ip(request), settings.METRICS_ALLOWED_NETWORKS):
        return json_error(404, ErrorCode.NOT_FOUND, "Not found.")
    ensure_health_checks()  # the up gauges come from the background checks
    content, content_type = exposition()
    return HttpResponse(content, content_type=content_type)


urlpatterns = [
    re_path(r"^metrics/?$", metrics_view, name="metrics"),
    # Every path works with and without a trailing slash (Ninja's own routes below serve these too).
    re_path(r"^api/docs/?$", partial(openapi_view, api=api)),
    re_path(r"^api/openapi\.json/?$", partial(openapi_json, api=api)),
    re_path(r"^api/", proxy),  # every other /api/ path, before Ninja's routes are tried
    path("", api.urls),
]

handler400 = "common.errors.handler400"
handler403 = "common.errors.handler403"
handler404 = "common.errors.handler404"
handler500 = "common.errors.handler500"
