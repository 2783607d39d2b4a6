"""Events become notifications: who is told, on which channels, exactly once, and how delivery ends."""

import uuid

import pytest

from common import events
from notifications.models import Notification, Recipient
from notifications.tasks import consume_event
from tests.conftest import loan_event, message, registered

pytestmark = pytest.mark.django_db(transaction=True)


def rows(**filters) -> list[tuple]:
    return sorted(Notification.objects.filter(**filters).values_list("user_id", "channel", "status"))


def test_signup_welcomes_the_user_in_the_app_and_by_email(mailbox):
    consume_event(message(registered(3, email="ann@example.com")))

    assert Recipient.objects.get(pk=3).email == "ann@example.com"
    assert rows(kind="user.registered") == [(3, "email", "sent"), (3, "in_app", "sent")]
    [email] = mailbox.messages
    assert email["To"] == "ann@example.com"
    assert email["Subject"].startswith("Welcome")
    assert email["X-Correlation-ID"] == "corr-1"


def test_the_same_event_five_times_gives_one_notification_per_channel(mailbox):
    event_id = uuid.uuid4()
    for _ in range(5):
        consume_event(message(registered(3), event_id=event_id))

    assert Notification.objects.count() == 2
    assert len(mailbox.messages) == 1


def test_a_decision_tells_the_customer_and_the_agent(mailbox):
    consume_event(message(registered(3)))
    consume_event(message(registered(7, role="agent")))

    consume_event(message(loan_event(events.LoanApproved, loan_id=12)))

    approved = Notification.objects.filter(kind="loan.approved")
    assert sorted(approved.values_list("user_id", "channel", "status")) == [
        (3, "email", "sent"),
        (3, "in_app", "sent"),
        (7, "email", "sent"),
        (7, "in_app", "sent"),
    ]
    assert approved.get(user_id=3, channel="in_app").subject == "Your loan #12 is approved"
    assert "#12" in approved.get(user_id=7, channel="in_app").subject


def test_a_new_loan_tells_the_customer_only(mailbox):
    consume_event(message(loan_event(events.LoanCreated)))

    assert {user_id for user_id, _, _ in rows(kind="loan.created")} == {3}


def test_an_edit_tells_nobody(mailbox):
    assert consume_event(message(loan_event(events.LoanUpdated))) == 0
    assert not Notification.objects.exists()


def test_agent_approval_tells_the_agent_and_updates_the_contact_data(mailbox):
    consume_event(message(registered(7, role="agent", email="old@example.com")))
    approved = events.AgentApproved(user_id=7, email="new@example.com", first_name="Abe", last_name="Ng", decided_by=1)

    consume_event(message(approved))

    assert Recipient.objects.get(pk=7).email == "new@example.com"
    assert rows(kind="agent.approved") == [(7, "email", "sent"), (7, "in_app", "sent")]
    assert mailbox.messages[-1]["To"] == "new@example.com"


def test_an_unknown_recipient_gets_the_in_app_notice_and_the_email_fails_at_once(mailbox):
    consume_event(message(loan_event(events.LoanCreated, customer_id=99)))

    email = Notification.objects.get(user_id=99, channel="email")
    assert rows(user_id=99) == [(99, "email", "failed"), (99, "in_app", "sent")]
    assert email.attempts == 1
    assert "no known email address" in email.last_error
    assert mailbox.messages == []


def test_a_transient_smtp_failure_is_retried_then_sent(mailbox):
    consume_event(message(registered(3)))  # the recipient exists
    Notification.objects.all().delete()
    mailbox.messages.clear()
    mailbox.defer = 1  # the server answers 451 once

    consume_event(message(loan_event(events.LoanCreated)))

    email = Notification.objects.get(channel="email")
    assert (email.status, email.attempts) == ("sent", 2)
    assert len(mailbox.messages) == 1


def test_an_unreachable_smtp_server_ends_in_failed_after_the_cap(settings):
    consume_event(message(registered(3)))
    settings.EMAIL_PORT = 9  # nothing listens there
    settings.EMAIL_TIMEOUT = 0.5

    consume_event(message(loan_event(events.LoanCreated)))

    email = Notification.objects.get(kind="loan.created", channel="email")
    assert email.status == "failed"
    assert email.attempts == 1 + settings.NOTIFICATION_MAX_RETRIES
    assert "ConnectionRefusedError" in email.last_error


@pytest.mark.parametrize("change", [{"name": "loan.exploded"}, {"version": "2.0"}, {"payload": {"user_id": "x"}}])
def test_unknown_names_versions_and_malformed_payloads_are_rejected_loudly(mailbox, caplog, change):
    bad = {**message(registered(3)), **change}

    assert consume_event(bad) == 0
    assert not Notification.objects.exists()
    assert any(record.levelname == "ERROR" for record in caplog.records)
