"""user_service's business metrics on /metrics (common.business_metrics): users by role and approval, the outbox."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from common import business_metrics
from users.models import User


def user_families() -> Iterable[Metric]:
    users = GaugeMetricFamily("lms_users", "Active users by role and approval.", labels=["role", "approval"])
    rows = User.objects.filter(is_active=True).values_list("role", "approval").annotate(rows=Count("pk"))
    for role, approval, count in sorted(rows):
        users.add_metric([role, approval], count)
    yield users


def register() -> None:
    business_metrics.register("users", user_families, ttl=15.0)
    business_metrics.register("outbox", business_metrics.outbox_families)
