"""The send-twice window: a worker that dies after the SMTP server took an email but before the outcome is written.

The claim ("sending") is committed before SMTP, so that death leaves a trace; another worker
leaves a row "sending" alone until it is stale, then sends it again with the same Message-ID
(receivers can drop the copy) and says so on the row. See docs/DESIGN.md, "Dead letters and
the send-twice window".
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from notifications import services, tasks
from notifications.backends import EmailBackend, stable_message_id
from notifications.models import Notification
from notifications.tasks import consume_event, queue_deliveries, requeue_stuck
from tests.conftest import message, registered

pytestmark = pytest.mark.django_db(transaction=True)


class WorkerDied(BaseException):
    """The process is gone: nothing after this runs (not an Exception, so nothing catches it)."""


@pytest.fixture
def ann(mailbox):
    consume_event(message(registered(3, email="ann@example.com")))
    Notification.objects.all().delete()
    mailbox.messages.clear()


def email_to_ann() -> Notification:
    return Notification.objects.create(user_id=3, channel="email", kind="admin.message", subject="Hi", body="b")


@pytest.fixture
def dies_after_smtp(monkeypatch):
    """The first outcome write after an SMTP conversation never happens: the worker dies right before it."""
    real, calls = services._finish, []

    def finish(notification, **outcome):
        calls.append(outcome)
        if len(calls) == 1:
            raise WorkerDied()
        return real(notification, **outcome)

    monkeypatch.setattr(services, "_finish", finish)


def stale(notification: Notification, settings) -> None:
    """Age the claim past the takeover threshold, as if that long had passed since the worker died."""
    since = timezone.now() - timedelta(seconds=settings.NOTIFICATION_SENDING_TAKEOVER_SECONDS + 1)
    Notification.objects.filter(pk=notification.pk).update(sending_since=since)


class SeesItsClaim(EmailBackend):
    """Records, while SMTP is talked, whether a transaction is open and what the row says."""

    seen: list = []

    def send(self, notification, recipient):
        row = Notification.objects.get(pk=notification.pk)
        self.seen.append((connection.in_atomic_block, row.status, row.attempts))
        return super().send(notification, recipient)


def test_the_claim_is_committed_and_no_transaction_is_open_while_smtp_is_talked(ann, mailbox, settings):
    settings.NOTIFICATION_BACKENDS = {**settings.NOTIFICATION_BACKENDS, "email": f"{__name__}.SeesItsClaim"}
    SeesItsClaim.seen = []
    email = email_to_ann()

    queue_deliveries([email.pk])

    assert SeesItsClaim.seen == [(False, "sending", 1)]
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("sent", 1, "")


def test_a_worker_dying_after_smtp_leaves_the_row_sending_and_a_second_worker_does_not_resend_it(
    ann, mailbox, dies_after_smtp
):
    email = email_to_ann()

    with pytest.raises(WorkerDied):
        services.deliver(notification_id=email.pk)
    services.deliver(notification_id=email.pk)  # the redelivered task, while the claim is fresh

    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sending", 1)
    assert len(mailbox.messages) == 1


def test_a_stale_send_is_taken_over_and_sent_again_with_the_same_message_id(ann, mailbox, dies_after_smtp, settings):
    email = email_to_ann()
    with pytest.raises(WorkerDied):
        services.deliver(notification_id=email.pk)
    stale(email, settings)

    services.deliver(notification_id=email.pk)

    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 2)
    assert email.last_error == services.POSSIBLY_SENT  # an operator can see this one may have gone out twice
    first, second = mailbox.messages
    assert first["Message-ID"] == second["Message-ID"] == email.provider_message_id == stable_message_id(email)


def test_the_stuck_sweep_recovers_a_stale_send_and_leaves_a_fresh_one_alone(ann, mailbox, settings):
    fresh, abandoned = email_to_ann(), email_to_ann()
    Notification.objects.filter(pk__in=[fresh.pk, abandoned.pk]).update(
        status="sending", attempts=1, sending_since=timezone.now()
    )
    stale(abandoned, settings)

    assert requeue_stuck() == 1

    fresh.refresh_from_db()
    abandoned.refresh_from_db()
    assert fresh.status == "sending"
    assert (abandoned.status, abandoned.attempts, abandoned.requeues) == ("sent", 2, 1)
    assert abandoned.last_error == services.POSSIBLY_SENT
    assert [m["Message-ID"] for m in mailbox.messages] == [stable_message_id(abandoned)]


def test_a_retried_email_keeps_its_message_id(ann, mailbox):
    mailbox.data_refusal, mailbox.data_refusals = "451 4.3.0 Local problem, try later", 1
    email = email_to_ann()

    queue_deliveries([email.pk])

    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 2)
    [delivered] = mailbox.messages
    assert delivered["Message-ID"] == email.provider_message_id == f"<{email.event_id.hex}.3.email@notifications.lms>"


def test_a_failed_attempt_puts_the_row_back_to_pending_not_sending(ann, mailbox, settings):
    settings.NOTIFICATION_MAX_RETRIES = 0
    mailbox.data_refusal, mailbox.data_refusals = "451 4.3.0 Local problem, try later", 1
    email = email_to_ann()

    queue_deliveries([email.pk])

    email.refresh_from_db()
    assert (email.status, email.attempts) == ("failed", 1)
    assert "451" in email.last_error


def test_a_task_finding_the_row_being_sent_looks_again_when_that_send_would_be_stale(ann, settings, monkeypatch):
    held = []
    monkeypatch.setattr(tasks, "_publish", lambda task, args, countdown=None: held.append((task.name, args, countdown)))
    email = email_to_ann()
    since = timezone.now() - timedelta(seconds=10)
    Notification.objects.filter(pk=email.pk).update(status="sending", attempts=1, sending_since=since)

    assert tasks.deliver_notification(email.pk) == "sending"  # a redelivered task while another worker sends

    [(name, args, countdown)] = held
    assert (name, args) == ("notifications.deliver", (email.pk,))
    assert (
        settings.NOTIFICATION_SENDING_TAKEOVER_SECONDS - 10
        < countdown
        <= settings.NOTIFICATION_SENDING_TAKEOVER_SECONDS - 8
    )
