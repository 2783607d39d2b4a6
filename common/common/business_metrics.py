"""Business and pipeline metrics, read from the database when Prometheus scrapes.

Counted where the facts are kept, not in the process that happened to serve
a request: every web worker of a service answers /metrics with the same
figures (a per-process counter would be one worker's share, or need
gunicorn's multi-process files), a restart loses nothing, and a figure never
disagrees with the API. Each service registers its readers in its
AppConfig.ready (`register`); a reader returns metric families and is asked
at most once per CACHE_SECONDS per process, so a scrape every few seconds
costs a few primary-key or indexed reads, whatever the traffic. A reader
that fails with a database error (the database is down) yields nothing and counts
`lms_metrics_read_errors_total{reader}`; /metrics itself still answers.

The outbox readers are shared: every service with an outbox (common.outbox)
exports its backlog and the age of its oldest unsent row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import prometheus_client
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger("lms.metrics")

CACHE_SECONDS = 5.0
BACKLOG_CAP = 100_000
Reader = Callable[[], Iterable[Metric]]
_errors: dict[str, int] = {}
_errors_lock = threading.Lock()


class DatabaseCollector(Collector):
    """The families a reader returns, remembered CACHE_SECONDS; nothing (and an error counted) if it fails."""

    def __init__(self, name: str, read: Reader, *, ttl: float = CACHE_SECONDS) -> None:
        self.name = name
        self._read = read
        self._ttl = ttl
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if time.monotonic() - self._at >= self._ttl:
                try:
                    self._families = list(self._read())
                except DatabaseError:  # a scrape must answer even with the database down
                    logger.warning("metrics reader %s failed", self.name, exc_info=True)
                    with _errors_lock:
                        _errors[self.name] = _errors.get(self.name, 0) + 1
                    self._families = []
                self._at = time.monotonic()
            return list(self._families)

    def expire(self) -> None:
        with self._lock:
            self._at = float("-inf")


class _ReadErrors(Collector):
    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "lms_metrics_read_errors", "Business-metric reads that failed, by reader.", labels=["reader"]
        )
        with _errors_lock:
            for name, count in sorted(_errors.items()):
                family.add_metric([name], count)
        yield family


REGISTRY = prometheus_client.CollectorRegistry(auto_describe=False)
REGISTRY.register(_ReadErrors())
_registered: dict[str, DatabaseCollector] = {}


def register(name: str, read: Reader, *, ttl: float = CACHE_SECONDS) -> None:
    """Export `read`'s families on this service's /metrics (once per name: AppConfig.ready may run twice)."""
    if name in _registered:
        return
    _registered[name] = DatabaseCollector(name, read, ttl=ttl)
    REGISTRY.register(_registered[name])


def expire() -> None:
    """Read every figure afresh at the next scrape (tests; an operator's shell)."""
    for collector in _registered.values():
        collector.expire()


def metrics_view(request: HttpRequest) -> HttpResponse:
    """django-prometheus' exposition (this process's, or every worker's in multi-process mode) and ours."""
    from django_prometheus.exports import ExportToDjangoView

    base = ExportToDjangoView(request)
    body = base.content + prometheus_client.generate_latest(REGISTRY)
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)


def outbox_families() -> Iterable[Metric]:
    """The outbox's unsent rows and the age of the oldest: a relay that stopped shows as a growing age."""
    from common.outbox.backlog import unsent_backlog  # a model's: importable only where common.outbox is installed

    count, age = unsent_backlog(BACKLOG_CAP)
    backlog = GaugeMetricFamily(
        "lms_outbox_unsent", f"Events written but not yet handed to the broker (counted up to {BACKLOG_CAP:,})."
    )
    backlog.add_metric([], count)
    oldest = GaugeMetricFamily(
        "lms_outbox_oldest_unsent_age_seconds", "Seconds since the oldest unsent event was written (0: none)."
    )
    oldest.add_metric([], age or 0.0)
    yield backlog
    yield oldest
