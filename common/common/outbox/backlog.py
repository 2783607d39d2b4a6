"""How far an outbox is behind: its unsent events, counted up to a cap, and how long the oldest has waited.

Read by the admin's health panel (common.admin_health) and by /metrics (common.business_metrics).
"""

from __future__ import annotations

from django.db.models import Count, Min
from django.utils import timezone

from common.outbox.models import OutboxMessage


def unsent_backlog(cap: int) -> tuple[int, float | None]:
    """(unsent events, counted up to `cap`; seconds since the oldest was written, None when there is none).

    Oldest first, as the relay reads them, and created_at alone: both numbers come from one range of the
    partial index of unsent rows (outbox_unsent_idx), cut at `cap` entries, whatever the backlog.
    """
    unsent = OutboxMessage.objects.filter(sent_at__isnull=True).order_by("created_at")[:cap]
    backlog = unsent.aggregate(count=Count("created_at"), oldest=Min("created_at"))
    oldest = backlog["oldest"]
    return backlog["count"], (timezone.now() - oldest).total_seconds() if oldest is not None else None
