"""Event schemas: versioned envelopes that survive the wire; unknown fields ignored, unknown majors refused."""

import json
import uuid
from datetime import date, datetime
from decimal import Decimal

import pydantic
import pytest

from common import events

LOAN = {
    "loan_id": 12,
    "customer_id": 3,
    "agent_id": 7,
    "principal": Decimal("1000000.00"),
    "interest": Decimal("10.00"),
    "months": 60,
    "emi": Decimal("21247.04"),
    "amount": Decimal("1274822.84"),
    "total_interest": Decimal("274822.84"),
    "status": "NEW",
}
SERVICING = {"loan_id": 12, "customer_id": 3, "agent_id": 7, "total_outstanding": Decimal("9591.62")}
USER = {"user_id": 1, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}

EXAMPLES = [
    events.UserRegistered(**USER, role="customer", is_approved=True),
    events.AgentApproved(**USER, decided_by=9),
    events.AgentRejected(**USER, decided_by=9),
    events.LoanCreated(**LOAN),
    events.LoanUpdated(**LOAN),
    events.LoanTermsChanged(
        **LOAN,
        changed_by=7,
        old_principal=Decimal("200000.00"),
        old_interest=Decimal("8.45"),
        old_months=60,
        old_emi=Decimal("4098.49"),
        old_amount=Decimal("245909.22"),
    ),
    events.LoanApproved(**{**LOAN, "status": "APPROVED"}, decided_by=9),
    events.LoanRejected(**{**LOAN, "status": "REJECTED"}, decided_by=9, decision_note="Income too low."),
    events.LoanDisbursed(
        **SERVICING,
        principal=Decimal("10000.00"),
        months=12,
        emi=Decimal("871.97"),
        disbursed_on=date(2026, 1, 31),
        end_date=date(2027, 1, 31),
    ),
    events.LoanCancelled(**SERVICING, note="withdrawn"),
    events.RepaymentReceived(
        **SERVICING,
        transaction_id=5,
        amount=Decimal("871.97"),
        paid_on=date(2026, 2, 28),
        principal=Decimal("801.55"),
        interest=Decimal("70.42"),
        fees=Decimal("0.00"),
    ),
    events.RepaymentReversed(**SERVICING, transaction_id=5, amount=Decimal("871.97"), on=date(2026, 2, 28)),
    events.InstalmentDue(**SERVICING, instalment=2, due_date=date(2026, 3, 31), amount_due=Decimal("871.97")),
    events.LoanOverdue(
        **SERVICING, instalment=2, due_date=date(2026, 3, 31), amount_overdue=Decimal("871.97"), days_past_due=1
    ),
    events.LoanClosed(**SERVICING, closed_on=date(2027, 1, 31), total_paid=Decimal("10463.59")),
    events.LoanWrittenOff(
        **SERVICING,
        written_off_on=date(2026, 9, 1),
        principal=Decimal("9000.00"),
        interest=Decimal("60.00"),
        fees=Decimal("25.00"),
        days_past_due=95,
        note="unreachable",
    ),
    events.UserDeactivated(user_id=1, email="ann@example.com", role="agent", deactivated_by=9),
    events.UserProfileChanged(**USER, role="customer"),
]


def on_the_wire(payload: events.Payload, **envelope) -> dict:
    return json.loads(json.dumps(events.Envelope.wrap(payload, **envelope).to_message()))


@pytest.mark.parametrize("payload", EXAMPLES, ids=[type(p).event_name for p in EXAMPLES])
def test_every_event_round_trips_through_json(payload):
    envelope, parsed = events.parse_message(on_the_wire(payload, correlation_id="corr-1"))

    assert parsed == payload
    assert type(parsed) is type(payload)
    assert (envelope.name, envelope.version, envelope.correlation_id) == (payload.event_name, "1.0", "corr-1")


def test_every_event_name_has_one_schema():
    assert sorted(events.PAYLOADS) == sorted(type(p).event_name for p in EXAMPLES)


def test_the_envelope_has_the_documented_fields():
    message = on_the_wire(EXAMPLES[0], correlation_id="c")

    assert set(message) == {"name", "version", "event_id", "occurred_at", "correlation_id", "payload"}
    assert uuid.UUID(message["event_id"])
    assert datetime.fromisoformat(message["occurred_at"]).utcoffset() is not None


def test_each_envelope_gets_its_own_event_id():
    first, second = (events.Envelope.wrap(EXAMPLES[0]) for _ in range(2))

    assert first.event_id != second.event_id


def test_money_travels_as_exact_decimal_strings():
    payload = on_the_wire(EXAMPLES[3])["payload"]

    assert (payload["principal"], payload["emi"], payload["total_interest"]) == ("1000000.00", "21247.04", "274822.84")
    assert events.parse_message(on_the_wire(EXAMPLES[3]))[1].emi == Decimal("21247.04")


def test_unknown_fields_are_ignored_on_the_envelope_and_the_payload():
    message = on_the_wire(EXAMPLES[5])
    message["payload"]["something_new"] = "from a newer producer"
    message["also_new"] = True

    envelope, parsed = events.parse_message(message)

    assert parsed == EXAMPLES[5]
    assert not hasattr(parsed, "something_new")
    assert "also_new" not in envelope.model_dump()


def test_a_newer_minor_version_is_read():
    message = {**on_the_wire(EXAMPLES[0]), "version": "1.7"}

    assert events.parse_message(message)[1] == EXAMPLES[0]


@pytest.mark.parametrize("version", ["2.0", "0.9", "2"])
def test_an_unknown_major_version_is_refused_loudly(version):
    message = {**on_the_wire(EXAMPLES[0]), "version": version}

    with pytest.raises(events.UnsupportedEventVersion, match=rf"user\.registered version {version}"):
        events.parse_message(message)


def test_an_unknown_event_name_is_refused():
    with pytest.raises(events.UnknownEvent, match=r"user\.exploded"):
        events.parse_message({**on_the_wire(EXAMPLES[0]), "name": "user.exploded"})


def test_a_payload_missing_a_required_field_is_refused():
    message = on_the_wire(EXAMPLES[3])
    del message["payload"]["customer_id"]

    with pytest.raises(pydantic.ValidationError, match="customer_id"):
        events.parse_message(message)


def test_events_are_frozen():
    with pytest.raises(pydantic.ValidationError):
        EXAMPLES[0].user_id = 2  # type: ignore[misc]
