"""The checks of the admin index's health panel: a few bounded queries and one broker probe with a short timeout.

The database and broker probes are common.health's (the ones /health/ready runs); the broker's
is given BROKER_TIMEOUT_SECONDS and no retry, so an admin page waits one second at most for a
broker that is down or hung. The outbox backlog is one query on the outbox's partial index of
unsent rows, counting no further than COUNT_CAP. A service adds its own checks by dotted path
in ADMIN_HEALTH_CHECKS (notification_service: its failed notifications).

A check is a function returning a `Check`, named with `@health_check(name, label)`. Whatever it
raises shows as that check DOWN, never as a broken admin index.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.apps import apps
from django.conf import settings
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from common.health import check_broker, check_database

logger = logging.getLogger("lms.admin_health")

OK, WARN, DOWN = "ok", "warn", "down"
# Each connect or read of the broker probe waits this long at most, and a failure is not retried.
BROKER_TIMEOUT_SECONDS = 1.0
# Counts stop here ("1,000+"): a backlog of millions costs no more to show than one of a thousand.
COUNT_CAP = 1_000
# The relay sends a new row within a fraction of a second: one still unsent after this long is stuck.
OUTBOX_STALE_SECONDS = 60


@dataclass(frozen=True)
class Check:
    """One line of the panel."""

    state: str  # OK, WARN or DOWN: its CSS class and its data-state
    summary: str  # the status in words: "OK", "DOWN", "3 unsent, oldest 4 min"
    detail: str = ""
    link_url: str = ""  # the admin page to act on it, if any
    link_text: str = ""
    name: str = ""  # its data-check; set by @health_check
    label: str = ""  # set by @health_check


def health_check(name: str, label: str) -> Callable[[Callable[[], Check]], Callable[[], Check]]:
    """Name a check of the panel; an exception it raises becomes that check, DOWN, with the exception's class."""

    def decorate(compute: Callable[[], Check]) -> Callable[[], Check]:
        @wraps(compute)
        def check() -> Check:
            try:
                result = compute()
            except Exception as exc:  # noqa: BLE001 - the panel reports failures, it must not be one
                logger.warning("admin health check failed", extra={"check": name}, exc_info=exc)
                result = Check(DOWN, "DOWN", f"the check failed: {type(exc).__name__}")
            return dataclasses.replace(result, name=name, label=label)

        return check

    return decorate


def bounded_count(queryset: QuerySet) -> int:
    """How many rows `queryset` has, counting no further than COUNT_CAP + 1 (shown by count_text as "1,000+")."""
    return queryset[: COUNT_CAP + 1].count()


def count_text(count: int) -> str:
    """`count` with thousands separators; past COUNT_CAP, "1,000+"."""
    return f"{COUNT_CAP:,}+" if count > COUNT_CAP else f"{count:,}"


def age_text(seconds: float) -> str:
    """An age in its largest whole unit: "12 s", "3 min", "5 h", "2 d"."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def admin_link(view_name: str, query: str, text: str) -> tuple[str, str]:
    """(URL with `query`, text) of an admin page, for a Check's link; ("", "") where this admin has no such page."""
    try:
        url = reverse(view_name)
    except NoReverseMatch:
        return "", ""
    return f"{url}?{query}" if query else url, text


@health_check("database", "Database")
def database() -> Check:
    """`SELECT 1` on every database of the service, and how long it took."""
    result = check_database()
    if result["status"] != "ok":
        return Check(DOWN, "DOWN", result["error"])
    return Check(OK, "OK", f"{result['latency_ms']} ms")


@health_check("broker", "Broker")
def broker() -> Check:
    """Whether the Celery broker takes a connection within BROKER_TIMEOUT_SECONDS (its scheme shown, never its URL)."""
    url = getattr(settings, "CELERY_BROKER_URL", "")
    if not url:
        return Check(WARN, "NOT CONFIGURED", "CELERY_BROKER_URL is empty")
    scheme = url.partition("://")[0]
    result = check_broker(timeout=BROKER_TIMEOUT_SECONDS, retries=0)
    if result["status"] != "ok":
        return Check(DOWN, "DOWN", f"{scheme}: {result['error']} (gave up after {BROKER_TIMEOUT_SECONDS:g} s at most)")
    return Check(OK, "OK", f"{scheme}, {result['latency_ms']} ms")


@health_check("outbox", "Outbox")
def outbox() -> Check:
    """Events not yet handed to the broker: how many, and how long the oldest has waited."""
    from common.outbox.backlog import unsent_backlog  # a model's: importable only where common.outbox is installed

    count, age = unsent_backlog(COUNT_CAP + 1)
    link = admin_link("admin:outbox_outboxmessage_changelist", "sent_at__isempty=1", "unsent events")
    if age is None:
        return Check(OK, "OK", "0 unsent", *link)
    summary = f"{count_text(count)} unsent, oldest {age_text(age)}"
    if age < OUTBOX_STALE_SECONDS:
        return Check(OK, summary, "being sent", *link)
    return Check(WARN, summary, "waiting for over a minute: is the relay running and the broker up?", *link)


def panel_checks() -> list[Callable[[], Check]]:
    """Database and broker, the outbox where common.outbox is installed, then the service's ADMIN_HEALTH_CHECKS."""
    checks = [database, broker]
    if apps.is_installed("common.outbox"):
        checks.append(outbox)
    checks += [import_string(path) for path in getattr(settings, "ADMIN_HEALTH_CHECKS", [])]
    return checks


def service_health() -> dict:
    """Every check of the panel, run now: {"service", "checks": [Check, ...], "took_ms"}."""
    started = time.perf_counter()
    checks = [check() for check in panel_checks()]
    return {
        "service": getattr(settings, "SERVICE_NAME", ""),
        "checks": checks,
        "took_ms": round((time.perf_counter() - started) * 1000, 1),
    }
