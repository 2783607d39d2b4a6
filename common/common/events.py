"""Versioned event schemas: the only thing producers and consumers share. No Django here.

An event travels as an envelope: name, version, event id, occurred-at,
correlation id and payload. Consumers ignore unknown fields and reject an
unknown major version loudly.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
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
    event_name: ClassVar[str] = "loan.updated"


class LoanApproved(LoanEvent):
    event_name: ClassVar[str] = "loan.approved"


class LoanRejected(LoanEvent):
    event_name: ClassVar[str] = "loan.rejected"


PAYLOADS: dict[str, type[Payload]] = {
    model.event_name: model
    for model in (UserRegistered, AgentApproved, AgentRejected, LoanCreated, LoanUpdated, LoanApproved, LoanRejected)
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
