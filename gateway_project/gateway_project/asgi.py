"""ASGI entry point (measured in benchmarks/gateway_overhead.py; the gateway is served over WSGI)."""

import os

from django.core.asgi import get_asgi_application

from common.tracing import configure_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
configure_tracing("gateway")  # before the application loads its middleware: tracing's goes first
application = get_asgi_application()

from gateway.health import ensure_health_checks  # noqa: E402 - needs the settings configured above

ensure_health_checks()  # from the start, so /health/ready turns 200 without waiting for a first request
