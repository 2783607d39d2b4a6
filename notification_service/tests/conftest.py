"""Fixtures: tokens signed like user_service's, eager Celery, and a real SMTP server that can misbehave."""

from __future__ import annotations

import socket
import threading
import uuid

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from common import events
from common.testing import skip_unless_postgres, test_keys
from notification_service.celery import app as celery_app


def pytest_collection_modifyitems(config, items):
    skip_unless_postgres(items)


class Mailbox:
    """aiosmtpd handler: keeps messages; refuses the first `defer` recipients with 451 (try later),
    and answers the next `data_refusals` messages with `data_refusal` (e.g. "554 5.7.1 rejected").

    `refusals` answers every "HELO" (EHLO included), "MAIL" or "RCPT" command with the reply given.
    """

    def __init__(self) -> None:
        self.messages: list = []
        self.defer = 0
        self.data_refusal = ""
        self.data_refusals = 0
        self.refusals: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if "HELO" in self.refusals:
            return [self.refusals["HELO"]]
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        if "HELO" in self.refusals:
            return self.refusals["HELO"]
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if "MAIL" in self.refusals:
            return self.refusals["MAIL"]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            if "RCPT" in self.refusals:
                return self.refusals["RCPT"]
            if self.defer > 0:
                self.defer -= 1
                return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes

        with self.lock:
            if self.data_refusals > 0:
                self.data_refusals -= 1
                return self.data_refusal
            self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, mailbox
    finally:
        controller.stop()


SMTP_USER, SMTP_PASSWORD = "lms", "right-smtp-password"


def _known_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    known = isinstance(auth_data, LoginPassword) and auth_data == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=known, handled=False)  # not handled: the server answers 535 itself


@pytest.fixture(scope="session")
def smtp_server_with_login():
    """A second server that accepts mail only after AUTH as SMTP_USER (over plain TCP, for the tests)."""
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        auth_required=True,
        auth_require_tls=False,  # warns on every connection: the tests using it filter that warning
        authenticator=_known_login,
    )
    controller.start()
    try:
        yield controller, mailbox
    finally:
        controller.stop()


def _empty(box: Mailbox) -> Mailbox:
    box.messages.clear()
    box.defer = box.data_refusals = 0
    box.refusals.clear()
    return box


@pytest.fixture
def mailbox(smtp_server, settings):
    controller, box = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    return _empty(box)


@pytest.fixture
def mailbox_with_login(smtp_server_with_login, settings):
    """The server asking for a login; settings point at it without credentials (a test sets them)."""
    controller, box = smtp_server_with_login
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "", ""
    return _empty(box)


@pytest.fixture(autouse=True)
def _wiring(settings, smtp_server):
    settings.JWT_PUBLIC_KEY_PATHS = [str(test_keys.public_path)]
    settings.JWT_JWKS_URL = ""
    controller, _ = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # a real SMTP conversation, always
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.NOTIFICATION_MAX_RETRIES = 2
    settings.NOTIFICATION_EVENT_MAX_RETRIES = 2
    settings.NOTIFICATION_RETRY_BACKOFF_SECONDS = 0
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_always_eager = False


def forget_broker_connections() -> None:
    celery_app.close()  # drops the connection pool...
    celery_app.amqp._producer_pool = None  # ...but Celery 5.5 keeps the producers bound to it


@pytest.fixture
def broker_down(monkeypatch):
    """Tasks are published for real, to a Redis URL where nothing listens."""
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")  # Celery prefers it to its conf
    celery_app.conf.task_always_eager = False
    forget_broker_connections()
    yield
    forget_broker_connections()


class Api(APIClient):
    def as_role(self, role: str, user_id: int, *, is_approved: bool = True):
        self.credentials(
            HTTP_AUTHORIZATION=f"Bearer {test_keys.mint(user_id=user_id, role=role, is_approved=is_approved)}"
        )
        return self


@pytest.fixture
def api():
    return Api()


def message(payload: events.Payload, *, event_id: uuid.UUID | None = None, correlation_id: str = "corr-1") -> dict:
    """What a producer's relay sends: the envelope as JSON-safe data."""
    envelope = events.Envelope.wrap(payload, correlation_id=correlation_id)
    if event_id is not None:
        envelope = envelope.model_copy(update={"event_id": event_id})
    return envelope.to_message()


def registered(user_id: int, role: str = "customer", email: str | None = None) -> events.UserRegistered:
    return events.UserRegistered(
        user_id=user_id,
        email=email if email is not None else f"user{user_id}@example.com",
        first_name="Ann",
        last_name="Lee",
        role=role,
        is_approved=role == "customer",
    )


def unfolded(header: str) -> str:
    """A mail header's value as a reader sees it: a long one is folded onto the next line (RFC 5322)."""
    return header.replace("\r\n", "").replace("\n", "").strip()


def loan_event(kind: type[events.LoanEvent], *, loan_id: int = 12, customer_id: int = 3, agent_id: int = 7):
    return kind(
        loan_id=loan_id,
        customer_id=customer_id,
        agent_id=agent_id,
        principal="200000.00",
        interest="8.45",
        months=60,
        emi="4098.49",
        amount="245909.22",
        total_interest="45909.22",
        status="APPROVED" if kind is events.LoanApproved else "NEW",
        decided_by=1,
    )


def servicing_event(kind: type[events.ServicingEvent], **fields) -> events.ServicingEvent:
    """A servicing event of loan 12 (customer 3, agent 7), still owing, with its own `fields` added."""
    owed = {"total_outstanding": "241810.73", "next_due_date": "2025-03-15", "next_due_amount": "4098.49"}
    return kind(**{"loan_id": 12, "customer_id": 3, "agent_id": 7, **owed, **fields})


@pytest.fixture
def operator() -> Client:
    """An admin signed in to the Django admin (the row user_service's sign-in would mirror)."""
    user = get_user_model().objects.create(username="admin-1", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user, backend="common.admin_sso.UserServiceAdminBackend")
    return client
