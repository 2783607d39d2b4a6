"""/metrics carries the notifications by channel and status, the delivery attempts and the dead letters."""

import pytest

from common.events import LoanCreated
from common.schema_testing import metric_samples
from notifications import tasks
from notifications.models import DeadLetter, Notification
from notifications.tasks import consume_event
from tests.conftest import loan_event, message, registered

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(api) -> dict[tuple[str, tuple], float]:
    return metric_samples(api)


def test_notifications_by_channel_and_status_and_their_attempts(api, mailbox):
    consume_event(message(registered(7)))
    consume_event(message(loan_event(LoanCreated, customer_id=7)))
    rows = list(Notification.objects.values_list("channel", "status", "attempts"))

    figures = scrape(api)

    for channel, status in {(channel, status) for channel, status, _ in rows}:
        expected = sum(1 for c, s, _ in rows if (c, s) == (channel, status))
        assert figures[("lms_notifications", (("channel", channel), ("status", status)))] == expected
    assert figures[("lms_notifications", (("channel", "sms"), ("status", "failed")))] == 0  # every pair, even at 0
    for channel in Notification.Channel.values:
        tried = sum(attempts for c, _, attempts in rows if c == channel)
        assert figures[("lms_notification_attempts_total", (("channel", channel),))] == tried
    assert sum(attempts for *_, attempts in rows) >= 1  # the e-mails were sent: attempts counted


def test_dead_letters_by_status(api, mailbox):
    tasks.dead_letter(message(registered(8)), reason=DeadLetter.Reason.DATABASE_UNAVAILABLE, error="gone")

    figures = scrape(api)

    assert figures[("lms_dead_letters", (("status", "dead"),))] == 1
    assert figures[("lms_dead_letters", (("status", "replayed"),))] == 0
