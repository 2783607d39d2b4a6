"""notification_service's business metrics on /metrics (common.business_metrics): deliveries and dead letters."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from common import business_metrics
from notifications.models import DeadLetter, Notification


def notification_families() -> Iterable[Metric]:
    """Notifications by channel and status, and every delivery attempt made (a retry is an attempt after the first)."""
    rows = Notification.objects.values("channel", "status").annotate(rows=Count("pk"), attempts=Sum("attempts"))
    counts = {
        (channel, status): (0, 0) for channel in Notification.Channel.values for status in Notification.Status.values
    }
    counts |= {(row["channel"], row["status"]): (row["rows"], row["attempts"] or 0) for row in rows}
    notifications = GaugeMetricFamily(
        "lms_notifications", "Notifications by channel and status now.", labels=["channel", "status"]
    )
    attempts = CounterMetricFamily(
        "lms_notification_attempts", "Delivery attempts made, by channel.", labels=["channel"]
    )
    for (channel, status), (count, _) in sorted(counts.items()):
        notifications.add_metric([channel, status], count)
    for channel in sorted(Notification.Channel.values):
        attempts.add_metric([channel], sum(tried for (c, _), (_, tried) in counts.items() if c == channel))
    yield notifications
    yield attempts


def dead_letter_families() -> Iterable[Metric]:
    counts = dict(DeadLetter.objects.values_list("status").annotate(rows=Count("pk")).values_list("status", "rows"))
    letters = GaugeMetricFamily("lms_dead_letters", "Events the consumer gave up on, by status.", labels=["status"])
    for status in sorted(DeadLetter.Status.values):
        letters.add_metric([status], counts.get(status, 0))
    yield letters


def register() -> None:
    # A group-by over every notification: read at most every 30 s per process, not at every scrape.
    business_metrics.register("notifications", notification_families, ttl=30.0)
    business_metrics.register("dead_letters", dead_letter_families)
