"""The URLs every DRF service has besides its API, and the handlers that keep errors in the envelope."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from common.business_metrics import metrics_view
from common.errors import handler400, handler403, handler404, handler500
from common.health import urlpatterns as health_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "service_urlpatterns"]


def service_urlpatterns() -> list:
    """The OpenAPI document, the Django admin, Prometheus metrics, /health and /health/ready."""
    return [
        path("openapi.json", SpectacularAPIView.as_view(), name="openapi"),
        path("admin/", admin.site.urls),
        path("metrics", metrics_view, name="prometheus-django-metrics"),  # django-prometheus' and the business ones
        *health_urlpatterns,
    ]
