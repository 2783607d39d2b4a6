"""Events become notifications: who is told, on which channels, exactly once, and how delivery ends."""

import uuid

import pytest

from common import events
from notifications import services
from notifications.errors import TransientDeliveryError
from notifications.models import Notification, Recipient
from notifications.tasks import consume_event
from tests.conftest import loan_event, message, registered, unfolded

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


def test_changed_terms_tell_the_customer_in_the_app_and_by_email_with_the_old_and_the_new_terms(mailbox):
    consume_event(message(registered(3, email="ann@example.com")))
    consume_event(message(registered(7, role="agent")))
    new = loan_event(events.LoanCreated).model_dump() | {"principal": "1000000.00", "interest": "10.00", "months": 48}
    new |= {"emi": "25363.29", "amount": "1217437.92"}
    old = {"old_principal": "200000.00", "old_interest": "8.45", "old_months": 60, "old_emi": "4098.49"}
    changed = events.LoanTermsChanged(**new, **old, old_amount="245909.22", changed_by=7)

    consume_event(message(changed))

    assert rows(kind="loan.terms_changed") == [(3, "email", "sent"), (3, "in_app", "sent")]
    in_app = Notification.objects.get(kind="loan.terms_changed", channel="in_app")
    assert in_app.subject == "The terms of your loan #12 were changed"
    for figure in ("200000.00", "60 months", "4098.49", "1000000.00", "48 months", "25363.29", "1217437.92"):
        assert figure in in_app.body
    assert in_app.body.index("4098.49") < in_app.body.index("25363.29")  # before, then now
    [email] = [m for m in mailbox.messages if m["Subject"] == in_app.subject]
    assert email["To"] == "ann@example.com"


def test_agent_approval_tells_the_agent_and_updates_the_contact_data(mailbox):
    consume_event(message(registered(7, role="agent", email="old@example.com")))
    approved = events.AgentApproved(user_id=7, email="new@example.com", first_name="Abe", last_name="Ng", decided_by=1)

    consume_event(message(approved))

    assert Recipient.objects.get(pk=7).email == "new@example.com"
    assert rows(kind="agent.approved") == [(7, "email", "sent"), (7, "in_app", "sent")]
    assert mailbox.messages[-1]["To"] == "new@example.com"


def test_an_email_to_a_recipient_not_known_yet_is_retried_then_fails_at_the_cap(mailbox, settings):
    consume_event(message(loan_event(events.LoanCreated, customer_id=99)))

    email = Notification.objects.get(user_id=99, channel="email")
    assert rows(user_id=99) == [(99, "email", "failed"), (99, "in_app", "sent")]
    assert email.attempts == 1 + settings.NOTIFICATION_MAX_RETRIES
    assert "recipient not known yet" in email.last_error
    assert mailbox.messages == []


def test_a_loan_event_that_overtakes_the_signup_is_emailed_once_the_signup_arrives(mailbox):
    # given: loan.created arrives first (the relays of loan_service and user_service race)
    envelope, payload = events.parse_message(message(loan_event(events.LoanCreated, customer_id=99)))
    [email] = services.notify_for_event(envelope, payload)
    with pytest.raises(TransientDeliveryError, match="not known yet"):
        services.deliver(notification_id=email.pk)

    # when: user.registered follows, and the retry comes
    consume_event(message(registered(99, email="late@example.com")))
    delivered = services.deliver(notification_id=email.pk)

    # then
    assert (delivered.status, delivered.attempts) == ("sent", 2)
    assert "late@example.com" in [m["To"] for m in mailbox.messages]


def test_a_known_recipient_without_an_email_fails_at_once(mailbox):
    Recipient.objects.create(user_id=98, first_name="No", last_name="Mail")

    consume_event(message(loan_event(events.LoanCreated, customer_id=98)))

    email = Notification.objects.get(user_id=98, channel="email")
    assert (email.status, email.attempts) == ("failed", 1)
    assert "no email address" in email.last_error


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


def test_agent_rejection_tells_the_agent_in_the_app_and_by_email(mailbox):
    consume_event(message(registered(7, role="agent", email="abe@example.com")))
    rejected = events.AgentRejected(user_id=7, email="abe@example.com", first_name="Abe", last_name="Ng", decided_by=1)

    consume_event(message(rejected))

    assert rows(kind="agent.rejected") == [(7, "email", "sent"), (7, "in_app", "sent")]
    in_app = Notification.objects.get(kind="agent.rejected", channel="in_app")
    assert in_app.subject == "Your agent account was not approved"
    assert in_app.body.startswith("Hello Abe Ng,")
    assert mailbox.messages[-1]["To"] == "abe@example.com"
    assert mailbox.messages[-1]["Subject"] == "Your agent account was not approved"


def test_a_128_character_correlation_id_travels_from_the_event_to_the_email(mailbox):
    correlation_id = "e" * 128

    consume_event(message(registered(3), correlation_id=correlation_id))

    assert set(Notification.objects.values_list("correlation_id", flat=True)) == {correlation_id}
    assert unfolded(mailbox.messages[-1]["X-Correlation-ID"]) == correlation_id


def test_a_newline_in_a_name_does_not_break_the_subject(mailbox):
    payload = registered(3, email="ann@example.com").model_copy(update={"first_name": "Ann\nBcc: x@example.com"})

    consume_event(message(payload))

    assert rows(kind="user.registered") == [(3, "email", "sent"), (3, "in_app", "sent")]
    subject = Notification.objects.get(channel="email").subject
    assert subject == "Welcome to Loans, Ann Bcc: x@example.com Lee"
    assert mailbox.messages[-1]["Subject"] == subject
    assert mailbox.messages[-1]["Bcc"] is None
