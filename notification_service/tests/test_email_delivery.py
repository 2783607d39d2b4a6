"""How an email delivery ends, talking to a real SMTP server: which replies are retried and which fail at once."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification
from notifications.tasks import consume_event, queue_deliveries
from tests.conftest import SMTP_PASSWORD, SMTP_USER, message, registered

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ann(mailbox):
    consume_event(message(registered(3, email="ann@example.com")))
    Notification.objects.all().delete()
    mailbox.messages.clear()


def email_to_ann(subject: str = "Hi") -> Notification:
    notification = Notification.objects.create(
        user_id=3, channel="email", kind="admin.message", subject=subject, body="b"
    )
    queue_deliveries([notification.pk])
    notification.refresh_from_db()
    return notification


@pytest.mark.parametrize(
    "reply",
    ["554 5.7.1 Message rejected as spam", "550 5.1.1 Mailbox unavailable", "552 5.3.4 Message too big"],
    ids=["554", "550", "552"],
)
def test_a_5xx_reply_to_the_message_fails_at_once(ann, mailbox, reply):
    mailbox.data_refusal, mailbox.data_refusals = reply, 10

    email = email_to_ann()

    assert (email.status, email.attempts) == ("failed", 1)
    assert reply.split()[0] in email.last_error
    assert mailbox.messages == []


def test_a_5xx_refusal_of_the_recipient_fails_at_once(ann, mailbox):
    mailbox.refusals["RCPT"] = "550 5.1.1 No such user here"

    email = email_to_ann()

    assert (email.status, email.attempts) == ("failed", 1)
    assert "550" in email.last_error
    assert mailbox.messages == []


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("HELO", "554 5.7.1 Not accepting connections from you"),
        ("MAIL", "553 5.7.1 Sender address rejected: not owned by you"),
        ("RCPT", "530 5.7.0 Authentication required"),
    ],
    ids=["helo-554", "sender-553", "recipient-530"],
)
def test_a_5xx_refusal_of_our_server_settings_is_retried_then_failed_at_the_cap(ann, mailbox, settings, command, reply):
    # Not this message's fault: every email would fail at once if it were treated as permanent.
    mailbox.refusals[command] = reply

    email = email_to_ann()

    assert (email.status, email.attempts) == ("failed", 1 + settings.NOTIFICATION_MAX_RETRIES)
    assert reply.split()[0] in email.last_error
    assert mailbox.messages == []


# aiosmtpd warns about AUTH over plain TCP: fine against a server on 127.0.0.1 in a test.
plain_tcp_login = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@plain_tcp_login
def test_wrong_smtp_credentials_535_are_retried_then_failed_at_the_cap(ann, mailbox_with_login, settings):
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = SMTP_USER, "wrong-password"

    email = email_to_ann()

    assert (email.status, email.attempts) == ("failed", 1 + settings.NOTIFICATION_MAX_RETRIES)
    assert "535" in email.last_error
    assert mailbox_with_login.messages == []


@plain_tcp_login
def test_no_smtp_login_where_one_is_required_530_is_retried_then_failed_at_the_cap(ann, mailbox_with_login, settings):
    email = email_to_ann()  # no EMAIL_HOST_USER: the server answers MAIL FROM with 530

    assert (email.status, email.attempts) == ("failed", 1 + settings.NOTIFICATION_MAX_RETRIES)
    assert "530" in email.last_error
    assert mailbox_with_login.messages == []


@plain_tcp_login
def test_the_right_smtp_login_delivers(ann, mailbox_with_login, settings):
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = SMTP_USER, SMTP_PASSWORD

    email = email_to_ann()

    assert (email.status, email.attempts) == ("sent", 1)
    assert len(mailbox_with_login.messages) == 1


def test_a_4xx_reply_to_the_message_is_retried_then_sent(ann, mailbox):
    mailbox.data_refusal, mailbox.data_refusals = "451 4.3.0 Local problem, try later", 1

    email = email_to_ann()

    assert (email.status, email.attempts) == ("sent", 2)
    assert len(mailbox.messages) == 1


def test_an_unexpected_error_of_a_backend_is_retried_then_failed_never_left_pending(ann, mailbox, settings):
    # given: a row whose subject Django's mail refuses (BadHeaderError), e.g. written before the API checked it
    email = email_to_ann(subject="Hi\nBcc: everyone@example.com")

    assert email.status == "failed"
    assert email.attempts == 1 + settings.NOTIFICATION_MAX_RETRIES
    assert "BadHeaderError" in email.last_error
    assert mailbox.messages == []


def test_a_retry_is_due_within_the_backoff_bound_from_settings(ann, settings):
    settings.NOTIFICATION_MAX_RETRIES = 1
    settings.NOTIFICATION_RETRY_BACKOFF_SECONDS = 40
    settings.NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS = 60
    settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = 9, 0.5  # nothing listens there
    random.seed(0)  # the first draw of the jitter is 0.84: the retry is due about 34 s ahead

    email = email_to_ann()

    # The first retry was scheduled within 40 s (eager tasks run it at once), then the cap failed it.
    assert email.status == "failed"
    assert email.created_at + timedelta(seconds=1) < email.next_attempt_at <= timezone.now() + timedelta(seconds=40)
