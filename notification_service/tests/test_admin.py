"""The Django admin: an operator resends failed notifications with the list's action."""

import pytest

from notifications.models import Notification
from notifications.tasks import consume_event
from tests.conftest import message, registered

pytestmark = pytest.mark.django_db(transaction=True)
CHANGELIST = "/admin/notifications/notification/"


@pytest.fixture
def failed_and_sent(mailbox):
    consume_event(message(registered(3, email="ann@example.com")))
    email = Notification.objects.get(user_id=3, channel="email")
    Notification.objects.filter(pk=email.pk).update(status="failed", last_error="gave up after 5 retries")
    mailbox.messages.clear()
    return email, Notification.objects.get(user_id=3, channel="in_app")


def test_the_resend_action_delivers_a_failed_notification_again(operator, failed_and_sent, mailbox):
    failed, _ = failed_and_sent

    response = operator.post(CHANGELIST, {"action": "resend_failed", "_selected_action": [failed.pk]}, follow=True)

    assert response.status_code == 200
    assert "1 notification(s) queued again." in response.content.decode()
    failed.refresh_from_db()
    assert (failed.status, failed.last_error) == ("sent", "")
    assert [m["To"] for m in mailbox.messages] == ["ann@example.com"]


def test_the_resend_action_leaves_notifications_that_did_not_fail_alone(operator, failed_and_sent, mailbox):
    _, sent = failed_and_sent

    response = operator.post(CHANGELIST, {"action": "resend_failed", "_selected_action": [sent.pk]}, follow=True)

    assert "0 notification(s) queued again." in response.content.decode()
    sent.refresh_from_db()
    assert (sent.status, sent.attempts) == ("sent", 1)
    assert mailbox.messages == []


def test_the_list_filters_by_status(operator, failed_and_sent):
    failed, sent = failed_and_sent

    page = operator.get(CHANGELIST, {"status__exact": "failed"}).content.decode()

    assert f"/admin/notifications/notification/{failed.pk}/change/" in page
    assert f"/admin/notifications/notification/{sent.pk}/change/" not in page
