"""The beat sweep: a pending notification whose task was lost is queued again, a few times at most.

Overdue counts from when it was last queued (next_attempt_at), not from when it was created.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import services, tasks
from notifications.models import Notification
from notifications.tasks import consume_event, deliver_many, publish_deliveries, requeue_stuck
from tests.conftest import message, registered

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def known_user(mailbox):
    consume_event(message(registered(3, email="ann@example.com")))


@pytest.fixture
def tasks_held_in_the_queue(monkeypatch):
    """Tasks are published but wait behind a backlog: none runs during the test. Lists (task name, args)."""
    held = []

    def publish(task, args: tuple) -> bool:
        held.append((task.name, args))
        return True

    monkeypatch.setattr(tasks, "_publish", publish)
    return held


def pending_email(*, queued_ago: timedelta, created_ago: timedelta | None = None, requeues: int = 0) -> Notification:
    """A pending email whose task never arrived, last queued `queued_ago`."""
    notification = Notification.objects.create(user_id=3, channel="email", kind="admin.message", subject="Hi", body="b")
    now = timezone.now()
    Notification.objects.filter(pk=notification.pk).update(
        next_attempt_at=now - queued_ago, created_at=now - (created_ago or queued_ago), requeues=requeues
    )
    return notification


def test_a_notification_overdue_since_it_was_queued_is_queued_again_and_sent(known_user, settings):
    stuck = pending_email(queued_ago=timedelta(seconds=settings.NOTIFICATION_STUCK_AFTER_SECONDS + 5))

    assert requeue_stuck() == 1

    stuck.refresh_from_db()
    assert (stuck.status, stuck.requeues) == ("sent", 1)


def test_a_notification_queued_recently_is_left_alone_however_old_it_is(known_user, settings):
    # given: created an hour ago, but queued again a moment ago (an admin's resend, a retry, a requeue)
    recent = pending_email(queued_ago=timedelta(seconds=5), created_ago=timedelta(hours=1))

    assert requeue_stuck() == 0

    recent.refresh_from_db()
    assert (recent.status, recent.requeues) == ("pending", 0)


def test_a_requeue_restarts_the_clock_even_when_the_broker_is_down(known_user, settings, broker_down):
    stuck = pending_email(queued_ago=timedelta(seconds=settings.NOTIFICATION_STUCK_AFTER_SECONDS + 5))

    assert requeue_stuck() == 1
    assert requeue_stuck() == 0  # the next sweep, a minute later, waits for the new deadline

    stuck.refresh_from_db()
    assert (stuck.status, stuck.requeues) == ("pending", 1)
    assert timezone.now() - stuck.next_attempt_at < timedelta(seconds=30)


def test_after_the_requeue_cap_a_stuck_notification_fails_with_a_clear_error(known_user, settings, mailbox):
    settings.NOTIFICATION_MAX_REQUEUES = 3
    stuck = pending_email(queued_ago=timedelta(seconds=settings.NOTIFICATION_STUCK_AFTER_SECONDS + 5), requeues=3)

    assert requeue_stuck() == 0

    stuck.refresh_from_db()
    assert stuck.status == "failed"
    assert "re-queued 3 time(s)" in stuck.last_error
    assert [m for m in mailbox.messages if m["Subject"] == "Hi"] == []


def test_a_resend_gives_a_notification_that_failed_stuck_a_fresh_start(known_user, settings, broker_down):
    settings.NOTIFICATION_MAX_REQUEUES = 1
    stuck = pending_email(queued_ago=timedelta(seconds=settings.NOTIFICATION_STUCK_AFTER_SECONDS + 5), requeues=1)
    requeue_stuck()

    assert services.resend(notification_ids=[stuck.pk]) == [stuck.pk]

    stuck.refresh_from_db()
    assert (stuck.status, stuck.requeues, stuck.last_error) == ("pending", 0, "")
    assert timezone.now() - stuck.next_attempt_at < timedelta(seconds=30)


def test_a_row_whose_task_waits_behind_a_backlog_is_neither_requeued_nor_failed(
    known_user, settings, tasks_held_in_the_queue
):
    # given: an admin's batch whose fan-out task waited in the queue longer than the sweep's threshold
    waiting = pending_email(queued_ago=timedelta(seconds=settings.NOTIFICATION_STUCK_AFTER_SECONDS + 5))

    deliver_many([waiting.pk])  # the fan-out runs at last: the row's delivery task joins the backlog

    assert tasks_held_in_the_queue == [("notifications.deliver", (waiting.pk,))]
    assert requeue_stuck() == 0  # not stuck: its task was published a moment ago
    waiting.refresh_from_db()
    assert (waiting.status, waiting.requeues) == ("pending", 0)
    assert timezone.now() - waiting.next_attempt_at < timedelta(seconds=30)  # the sweep counts from the publish


def test_publishing_a_row_again_keeps_a_retry_that_is_due_later(known_user, tasks_held_in_the_queue):
    retrying = pending_email(queued_ago=timedelta(0))
    services.schedule_retry(notification_id=retrying.pk, delay=300)
    due = Notification.objects.get(pk=retrying.pk).next_attempt_at

    publish_deliveries([retrying.pk])  # e.g. its event was delivered again

    assert Notification.objects.get(pk=retrying.pk).next_attempt_at == due
