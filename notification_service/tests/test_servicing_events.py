"""Events of a disbursed loan's life become notifications: who is told, and texts with the amounts and dates."""

import uuid

import pytest

from common import events
from notifications.models import Notification
from notifications.tasks import consume_event
from tests.conftest import message, registered, servicing_event

pytestmark = pytest.mark.django_db(transaction=True)

DISBURSED = servicing_event(
    events.LoanDisbursed,
    total_outstanding="245909.22",
    next_due_date="2025-02-15",
    principal="200000.00",
    months=60,
    emi="4098.49",
    disbursed_on="2025-01-15",
    end_date="2030-01-15",
)
CANCELLED = servicing_event(
    events.LoanCancelled, total_outstanding="0.00", next_due_date=None, next_due_amount="0.00", note="not collected"
)
RECEIVED = servicing_event(
    events.RepaymentReceived,
    transaction_id=55,
    amount="4098.49",
    paid_on="2025-02-14",
    principal="2690.16",
    interest="1408.33",
    fees="0.00",
)
REVERSED = servicing_event(
    events.RepaymentReversed,
    total_outstanding="245909.22",
    next_due_date="2025-02-15",
    transaction_id=55,
    amount="4098.49",
    on="2025-02-20",
    note="cheque bounced",
)
DUE = servicing_event(
    events.InstalmentDue, next_due_date="2025-03-15", instalment=2, due_date="2025-03-15", amount_due="4098.49"
)
OVERDUE = servicing_event(
    events.LoanOverdue,
    next_due_date="2025-03-15",
    next_due_amount="4123.49",
    instalment=2,
    due_date="2025-03-15",
    amount_overdue="4098.49",
    days_past_due=5,
)
CLOSED = servicing_event(
    events.LoanClosed,
    total_outstanding="0.00",
    next_due_date=None,
    next_due_amount="0.00",
    closed_on="2030-01-14",
    total_paid="245934.22",
)
WRITTEN_OFF = servicing_event(
    events.LoanWrittenOff,
    total_outstanding="0.00",
    next_due_date=None,
    next_due_amount="0.00",
    written_off_on="2026-06-30",
    principal="150000.00",
    interest="9876.54",
    fees="75.00",
    days_past_due=182,
    note="customer unreachable, sent to collections",
)


def case(payload: events.Payload, *rest):
    return pytest.param(payload, *rest, id=payload.event_name)


@pytest.fixture
def customer_and_agent(mailbox):
    """Customer 3 and agent 7 are known (their emails can be sent); their welcome notifications are gone."""
    consume_event(message(registered(3)))
    consume_event(message(registered(7, role="agent")))
    Notification.objects.all().delete()
    mailbox.messages.clear()
    return mailbox


def changed(payload: events.Payload, **fields) -> events.Payload:
    return type(payload).model_validate({**payload.model_dump(), **fields})


def notification(payload: events.Payload, user_id: int) -> Notification:
    return Notification.objects.get(kind=payload.event_name, user_id=user_id, channel="in_app")


@pytest.mark.parametrize(
    ("payload", "told"),
    [
        case(DISBURSED, {3}),
        case(CANCELLED, {3}),
        case(RECEIVED, {3}),
        case(REVERSED, {3}),
        case(DUE, {3}),
        case(OVERDUE, {3, 7}),
        case(CLOSED, {3}),
        case(WRITTEN_OFF, {3, 7}),
    ],
)
def test_a_servicing_event_tells_the_customer_and_for_arrears_the_agent(customer_and_agent, payload, told):
    consume_event(message(payload))

    expected = sorted((user_id, channel, "sent") for user_id in told for channel in ("email", "in_app"))
    assert sorted(Notification.objects.values_list("user_id", "channel", "status")) == expected
    assert len(customer_and_agent.messages) == len(told)


@pytest.mark.parametrize(
    ("payload", "subject", "in_body"),
    [
        case(
            DISBURSED,
            "Your loan #12 of 200000.00 is paid out",
            ["200000.00", "2025-01-15", "first instalment of 4098.49 is due on 2025-02-15", "60 months", "2030-01-15"],
        ),
        case(CANCELLED, "Your loan #12 was cancelled", ["never paid out", "You owe nothing", "Reason: not collected"]),
        case(
            RECEIVED,
            "We received 4098.49 for your loan #12",
            ["4098.49", "2025-02-14", "#55", "Still owed: 241810.73", "Next instalment: 4098.49 due on 2025-03-15"],
        ),
        case(
            REVERSED,
            "A payment on your loan #12 was reversed",
            ["payment of 4098.49 (transaction #55)", "2025-02-20", "Note: cheque bounced", "balance: 245909.22"],
        ),
        case(DUE, "Instalment 2 of your loan #12 is due on 2025-03-15", ["4098.49 is due on 2025-03-15", "241810.73"]),
        case(
            OVERDUE,
            "Your loan #12 is 5 days overdue",
            ["Instalment 2", "2025-03-15", "4098.49 is overdue", "5 days past due", "Pay 4123.49 to bring"],
        ),
        case(CLOSED, "Your loan #12 is paid off", ["2030-01-14", "You paid 245934.22 in total"]),
        case(
            WRITTEN_OFF,
            "Your loan #12 was written off",
            ["2026-06-30", "150000.00 principal", "9876.54 interest", "75.00 fees"],
        ),
    ],
)
def test_the_customer_is_told_the_amounts_and_dates(customer_and_agent, payload, subject, in_body):
    consume_event(message(payload))

    told = notification(payload, user_id=3)
    assert told.subject == subject
    assert [text for text in in_body if text not in told.body] == []
    [email] = [email for email in customer_and_agent.messages if email["To"] == "user3@example.com"]
    assert email["Subject"] == subject


@pytest.mark.parametrize(
    ("payload", "subject", "in_body"),
    [
        case(OVERDUE, "Loan #12 of customer 3 is 5 days overdue", ["Instalment 2", "2025-03-15", "4098.49 overdue"]),
        case(
            WRITTEN_OFF,
            "Loan #12 of customer 3 was written off",
            [
                "2026-06-30",
                "182 days",
                "150000.00 principal, 9876.54 interest, 75.00 fees",
                "Note: customer unreachable",
            ],
        ),
    ],
)
def test_the_agent_is_told_about_arrears_in_agent_wording(customer_and_agent, payload, subject, in_body):
    consume_event(message(payload))

    told = notification(payload, user_id=7)
    assert told.subject == subject
    assert [text for text in in_body if text not in told.body] == []


def test_an_overdue_of_one_day_says_day_not_days(customer_and_agent):
    consume_event(message(changed(OVERDUE, days_past_due=1)))

    assert notification(OVERDUE, user_id=3).subject == "Your loan #12 is 1 day overdue"
    assert notification(OVERDUE, user_id=7).subject == "Loan #12 of customer 3 is 1 day overdue"


def test_the_last_repayment_says_the_loan_is_paid_off(customer_and_agent):
    last = changed(RECEIVED, total_outstanding="0.00", next_due_date=None, next_due_amount="0.00")

    consume_event(message(last))

    body = notification(RECEIVED, user_id=3).body
    assert "Your loan is now paid off." in body
    assert "Still owed" not in body
    assert "Next instalment" not in body


def test_a_reversed_late_fee_is_called_a_late_fee(customer_and_agent):
    consume_event(message(changed(REVERSED, kind="fee", amount="25.00", transaction_id=56)))

    told = notification(REVERSED, user_id=3)
    assert told.subject == "A late fee on your loan #12 was reversed"
    assert told.body.startswith("The late fee of 25.00 (transaction #56)")


def test_the_write_off_note_is_for_the_agent_only(customer_and_agent):
    consume_event(message(WRITTEN_OFF))

    assert "collections" not in notification(WRITTEN_OFF, user_id=3).body
    assert "collections" in notification(WRITTEN_OFF, user_id=7).body


def test_a_redelivered_repayment_notifies_once(customer_and_agent):
    event_id = uuid.uuid4()
    for _ in range(3):
        consume_event(message(RECEIVED, event_id=event_id))

    assert Notification.objects.filter(kind="repayment.received").count() == 2
    assert len(customer_and_agent.messages) == 1


def test_a_newer_minor_version_with_unknown_fields_still_notifies(customer_and_agent):
    newer = {**message(DUE), "version": "1.3"}
    newer["payload"] = {**newer["payload"], "channel_hint": "sms", "grace_days": 3}

    assert consume_event(newer) == 1  # the email; in_app is delivered by being stored

    assert notification(DUE, user_id=3).subject == "Instalment 2 of your loan #12 is due on 2025-03-15"
