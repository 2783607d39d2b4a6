"""Versioned event schemas: the only thing producers and consumers share. No Django here.

An event travels as an envelope: name, version, event id, occurred-at,
correlation id and payload. Consumers ignore unknown fields and reject an
unknown major version loudly.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

# The Celery task every event is delivered to, and its queue. Producers send
# by name, so no service imports the consumer's code.
EVENT_TASK_NAME = "notifications.consume_event"
EVENT_QUEUE = "events"


class UnknownEvent(ValueError):
    """An event name no schema is registered for."""


class UnsupportedEventVersion(ValueError):
    """An event whose major version this code does not understand."""


class Payload(BaseModel):
    """Base of every payload: frozen, unknown fields ignored (forward compatible)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_name: ClassVar[str]
    version: ClassVar[str] = "1.0"


class UserRegistered(Payload):
    """A customer or agent signed up (or an admin was created)."""

    event_name: ClassVar[str] = "user.registered"

    user_id: int
    email: str
    first_name: str = ""
    last_name: str = ""
    role: str
    is_approved: bool


class AgentApproved(Payload):
    """An admin approved an agent."""

    event_name: ClassVar[str] = "agent.approved"

    user_id: int
    email: str
    first_name: str = ""
    last_name: str = ""
    decided_by: int


class AgentRejected(AgentApproved):
    """An admin rejected an agent."""

    event_name: ClassVar[str] = "agent.rejected"


class UserDeactivated(Payload):
    """A user was deactivated (an admin's action, or an agent deleted): they can no longer sign in."""

    event_name: ClassVar[str] = "user.deactivated"

    user_id: int
    email: str
    role: str
    deactivated_by: int | None = None  # the admin who did it; None for an operator's command


class UserProfileChanged(Payload):
    """A user's names (or role) changed: consumers keeping a copy of the user refresh it."""

    event_name: ClassVar[str] = "user.profile_changed"

    user_id: int
    email: str
    first_name: str = ""
    last_name: str = ""
    role: str


class LoanEvent(Payload):
    """What every loan event says about the loan. Money travels as decimal strings."""

    loan_id: int
    customer_id: int
    agent_id: int
    principal: Decimal
    interest: Decimal
    months: int
    emi: Decimal
    amount: Decimal
    total_interest: Decimal
    status: str
    decided_by: int | None = None
    decision_note: str = ""


class LoanCreated(LoanEvent):
    event_name: ClassVar[str] = "loan.created"


class LoanUpdated(LoanEvent):
    """No longer published (edits publish LoanTermsChanged); kept so that messages already sent still parse."""

    event_name: ClassVar[str] = "loan.updated"


class LoanTermsChanged(LoanEvent):
    """The terms of a NEW loan were edited (by its agent or an admin): the loan's fields are the new terms."""

    event_name: ClassVar[str] = "loan.terms_changed"

    changed_by: int
    old_principal: Decimal
    old_interest: Decimal
    old_months: int
    old_emi: Decimal
    old_amount: Decimal


class LoanApproved(LoanEvent):
    event_name: ClassVar[str] = "loan.approved"


class LoanRejected(LoanEvent):
    event_name: ClassVar[str] = "loan.rejected"


class ServicingEvent(Payload):
    """What every event of a disbursed loan's life says: whose loan, and what is owed after it.

    Money travels as decimal strings, dates as ISO dates. `total_outstanding` is principal,
    interest and fees still owed; `next_due_date` / `next_due_amount` are what keeps the loan current.
    """

    loan_id: int
    customer_id: int
    agent_id: int
    total_outstanding: Decimal
    next_due_date: date | None = None
    next_due_amount: Decimal = Decimal("0.00")


class LoanDisbursed(ServicingEvent):
    """The lender paid the principal out; the schedule is fixed from this date."""

    event_name: ClassVar[str] = "loan.disbursed"

    principal: Decimal
    months: int
    emi: Decimal
    disbursed_on: date
    end_date: date


class LoanCancelled(ServicingEvent):
    """An approved loan that was never disbursed within the window was cancelled by an admin."""

    event_name: ClassVar[str] = "loan.cancelled"

    note: str = ""


class RepaymentReceived(ServicingEvent):
    """A repayment was taken; `principal` / `interest` / `fees` are how it was allocated."""

    event_name: ClassVar[str] = "repayment.received"

    transaction_id: int
    amount: Decimal
    paid_on: date
    principal: Decimal
    interest: Decimal
    fees: Decimal


class RepaymentReversed(ServicingEvent):
    """A repayment (or a late fee: `kind`) was reversed by an admin; the balances are the corrected ones."""

    event_name: ClassVar[str] = "repayment.reversed"

    transaction_id: int
    kind: str = "repayment"
    amount: Decimal
    on: date
    note: str = ""


class InstalmentDue(ServicingEvent):
    """A reminder: instalment `instalment` falls due on `due_date` with `amount_due` still to pay."""

    event_name: ClassVar[str] = "instalment.due"

    instalment: int
    due_date: date
    amount_due: Decimal


class LoanOverdue(ServicingEvent):
    """Instalment `instalment` fell due on `due_date` and was not paid; sent once per instalment."""

    event_name: ClassVar[str] = "loan.overdue"

    instalment: int
    due_date: date
    amount_overdue: Decimal
    days_past_due: int


class LoanClosed(ServicingEvent):
    """Everything owed is paid."""

    event_name: ClassVar[str] = "loan.closed"

    closed_on: date
    total_paid: Decimal


class LoanWrittenOff(ServicingEvent):
    """An admin wrote the loan off in arrears; what was written off, by part."""

    event_name: ClassVar[str] = "loan.written_off"

    written_off_on: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    days_past_due: int
    note: str = ""


PAYLOADS: dict[str, type[Payload]] = {
    model.event_name: model
    for model in (
        UserRegistered,
        AgentApproved,
        AgentRejected,
        UserDeactivated,
        UserProfileChanged,
        LoanCreated,
        LoanUpdated,
        LoanTermsChanged,
        LoanApproved,
        LoanRejected,
        LoanDisbursed,
        LoanCancelled,
        RepaymentReceived,
        RepaymentReversed,
        InstalmentDue,
        LoanOverdue,
        LoanClosed,
        LoanWrittenOff,
    )
}


class Envelope(BaseModel):
    """One event on the wire."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    version: str
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str = ""
    payload: dict

    @classmethod
    def wrap(cls, payload: Payload, *, correlation_id: str = "") -> Envelope:
        """A new envelope around `payload`, with a fresh event id."""
        return cls(
            name=payload.event_name,
            version=payload.version,
            correlation_id=correlation_id,
            payload=payload.model_dump(mode="json"),
        )

    def to_message(self) -> dict:
        """The JSON-safe dict that is sent to the broker."""
        return self.model_dump(mode="json")


def parse_message(message: dict) -> tuple[Envelope, Payload]:
    """The envelope and typed payload of a received message.

    Raises UnknownEvent for a name with no schema and UnsupportedEventVersion
    for a major version other than the schema's.
    """
    envelope = Envelope.model_validate(message)
    model = PAYLOADS.get(envelope.name)
    if model is None:
        raise UnknownEvent(envelope.name)
    if envelope.version.split(".")[0] != model.version.split(".")[0]:
        raise UnsupportedEventVersion(f"{envelope.name} version {envelope.version}; this code reads {model.version}")
    return envelope, model.model_validate(envelope.payload)
