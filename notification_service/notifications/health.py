"""notification_service's lines on its admin index health panel (common.admin_health): failed notifications
and dead-lettered events.

Named in ADMIN_HEALTH_CHECKS. A failed notification is a dead letter: its retries (or re-queues) ran
out, and it waits for an operator's "Resend" in the admin, which the line links to.
"""

from __future__ import annotations

from common.admin_health import checks
from common.admin_health.checks import OK, WARN, Check, admin_link, count_text, health_check
from notifications import selectors


@health_check("notifications", "Notifications")
def delivery() -> Check:
    """How many notifications failed for good (a warning if any), and how many wait for a first try or a retry."""
    backlog = selectors.delivery_backlog(cap=checks.COUNT_CAP)
    waiting = f"{count_text(backlog['pending'])} pending, {count_text(backlog['retrying'])} retrying"
    link = admin_link("admin:notifications_notification_changelist", "status__exact=failed", "failed notifications")
    if backlog["failed"]:
        return Check(WARN, f"{count_text(backlog['failed'])} failed", waiting, *link)
    return Check(OK, "OK", f"0 failed, {waiting}", *link)


@health_check("dead_letters", "Dead letters")
def dead_letters() -> Check:
    """Events the consumer could not use and nobody replayed yet (a warning if any), linked to their list."""
    waiting = selectors.dead_letters_waiting(cap=checks.COUNT_CAP)
    link = admin_link("admin:notifications_deadletter_changelist", "status__exact=dead", "dead letters to replay")
    if waiting:
        return Check(WARN, f"{count_text(waiting)} to replay", "replay them once their cause is fixed", *link)
    return Check(OK, "OK", "0 to replay", *link)
