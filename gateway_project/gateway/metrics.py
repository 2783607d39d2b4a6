"""Prometheus metrics of the gateway: requests, latency, breakers, rate-limit rejections.

Routes are labelled by their API.md template (gateway.routing.metric_route),
so label values stay a bounded set whatever paths clients send.

Under gunicorn, gunicorn.conf.py gives every worker one
PROMETHEUS_MULTIPROC_DIR, and a scrape adds up all workers (prometheus_client's
multi-process mode); without it (granian, uvicorn, tests in one process) each
process keeps its own registry and a scrape sees the worker that answered.
Breaker and up gauges are set from the answering worker's view at each scrape
(`livemostrecent`).
"""

from __future__ import annotations

import ipaddress
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.upstreams import upstreams

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "gateway_requests_total",
    "Requests by route, method, status, upstream and its instance group (weighted routing)",
    ["route", "method", "status", "upstream", "group"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "gateway_request_duration_seconds",
    "Time from request to response, by route, status, upstream and instance group",
    ["route", "status", "upstream", "group"],
    registry=REGISTRY,
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
RATE_LIMITED = Counter(
    "gateway_rate_limited_total", "Requests refused with 429, by limit", ["limit"], registry=REGISTRY
)
API_KEY_REQUESTS = Counter(
    "gateway_api_key_requests_total",
    "Requests made with an API key, by the key's name and the answer's status",
    ["key", "status"],
    registry=REGISTRY,
)
TOKEN_VERIFICATIONS = Counter(
    "gateway_token_verifications_total",
    "Bearer tokens checked at the edge, by result: valid, cached (verified earlier), missing, malformed_header, "
    "or why the token was refused (expired, unknown_key, invalid, ...)",
    ["result"],
    registry=REGISTRY,
)
BREAKER = Gauge(
    "gateway_breaker_state",
    "Circuit breaker per instance: 0 closed, 1 half-open, 2 open",
    ["upstream", "instance"],
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
UP = Gauge(
    "gateway_upstream_up",
    "1 when the last health check passed",
    ["upstream", "instance"],
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def observe(*, route: str, method: str, status: int, upstream: str, group: str, seconds: float) -> None:
    """Count one answered request and its latency; `group` is "" when no instance was called."""
    REQUESTS.labels(route, method, str(status), upstream, group).inc()
    LATENCY.labels(route, str(status), upstream, group).observe(seconds)


def is_internal(address: str, networks: list[str]) -> bool:
    """Whether `address` lies in one of `networks` (CIDR strings); an unparsable address is not."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def exposition() -> tuple[bytes, str]:
    """The text to serve on /metrics and its content type."""
    for upstream in upstreams().values():
        for instance in upstream.instances:
            BREAKER.labels(upstream.name, instance.url).set(STATE_VALUES[instance.breaker.state])
            UP.labels(upstream.name, instance.url).set(1 if instance.healthy else 0)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
