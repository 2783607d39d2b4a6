"""Fixtures: tokens signed like user_service's, and a real HTTP server standing in for user_service."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from common.testing import skip_unless_postgres, test_keys
from loans import customers, schedule, services, servicing
from loans.models import Loan

CUSTOMER_ID, OTHER_CUSTOMER_ID, AGENT_ID, PENDING_AGENT_ID, ADMIN_ID = 3, 4, 7, 8, 1


def pytest_collection_modifyitems(config, items):
    skip_unless_postgres(items)


class FakeUserService(ThreadingHTTPServer):
    """Answers GET /internal/users/{id} like user_service does, from `users`; counts the calls."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.users: dict[int, dict] = {}
        self.logins: dict[tuple[str, str], dict] = {}
        # The second factor of the admin sign-in (issue 14): email -> the one code its TOTP accepts, and
        # the emails whose role needs a factor they have not enrolled.
        self.second_factors: dict[str, str] = {}
        self.enrolment_required: set[str] = set()
        self.challenges: dict[str, dict] = {}
        self.calls: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeUserService

    def do_GET(self):
        self.server.calls.append({"path": self.path, "headers": dict(self.headers)})
        user_id = int(self.path.rstrip("/").rsplit("/", 1)[-1])
        if self.headers.get("X-Service-Key") != settings.SERVICE_KEY:
            self._reply(403, {"success": False, "error": {"code": "permission_denied"}})
        elif user_id in self.server.users:
            self._reply(200, {"success": True, "data": self.server.users[user_id]})
        else:
            self._reply(404, {"success": False, "error": {"code": "user_not_found"}})

    def do_POST(self):  # user_service's login and its second step, for the admin sign-in
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.calls.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path.rstrip("/") == "/api/user/login/mfa":
            return self._second_step(body)
        account = self.server.logins.get((body.get("email"), body.get("password")))
        if self.path.rstrip("/") != "/api/user/login" or account is None:
            self._reply(401, {"success": False, "error": {"code": "invalid_credentials"}})
        elif body["email"] in self.server.enrolment_required:
            self._reply(200, {"success": True, "data": {"mfa_enrolment_required": True, "challenge": "e"}})
        elif body["email"] in self.server.second_factors:
            challenge = f"challenge-{len(self.server.challenges)}"
            self.server.challenges[challenge] = account
            data = {"mfa_required": True, "challenge": challenge, "expires_in": 300, "methods": ["totp"]}
            self._reply(200, {"success": True, "data": data})
        else:
            self._reply(200, {"success": True, "data": {"access": "x", "refresh": "y", "user": account}})

    def _second_step(self, body: dict) -> None:
        account = self.server.challenges.get(body.get("challenge"))
        if account is None:
            self._reply(400, {"success": False, "error": {"code": "mfa_challenge_invalid"}})
        elif body.get("code") != self.server.second_factors.get(account["email"]):
            self._reply(400, {"success": False, "error": {"code": "invalid_mfa_code"}})
        else:
            del self.server.challenges[body["challenge"]]  # single use
            self._reply(200, {"success": True, "data": {"access": "x", "refresh": "y", "user": account}})

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def user_service_server():
    server = FakeUserService()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _wiring(settings, user_service_server):
    """Tokens verified with the test key; the customer check goes to the fake user_service."""
    settings.JWT_PUBLIC_KEY_PATHS = [str(test_keys.public_path)]
    settings.JWT_JWKS_URL = ""
    settings.USER_SERVICE_URL = user_service_server.url
    user_service_server.users = {
        CUSTOMER_ID: {"id": CUSTOMER_ID, "role": "customer", "is_active": True, "email": "c@example.com"},
        OTHER_CUSTOMER_ID: {"id": OTHER_CUSTOMER_ID, "role": "customer", "is_active": True, "email": "o@example.com"},
        AGENT_ID: {"id": AGENT_ID, "role": "agent", "is_active": True, "email": "a@example.com"},
    }
    user_service_server.calls.clear()
    user_service_server.second_factors.clear()
    user_service_server.enrolment_required.clear()
    customers.user_service.cache_clear()
    yield
    customers.user_service.cache_clear()


class Api(APIClient):
    def as_role(self, role: str, user_id: int, *, is_approved: bool = True):
        token = test_keys.mint(user_id=user_id, role=role, is_approved=is_approved)
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return self

    def json(self, method: str, path: str, body=None):
        return getattr(self, method)(path, body, format="json")


@pytest.fixture
def api():
    return Api()


@pytest.fixture
def agent_api():
    return Api().as_role("agent", AGENT_ID)


@pytest.fixture
def admin_api():
    return Api().as_role("admin", ADMIN_ID)


@pytest.fixture
def customer_api():
    return Api().as_role("customer", CUSTOMER_ID)


@pytest.fixture
def other_customer_api():
    return Api().as_role("customer", OTHER_CUSTOMER_ID)


@pytest.fixture
def new_loan(db):
    """A NEW loan of 200,000.00 over 60 months for CUSTOMER_ID, requested by AGENT_ID."""
    return services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("200000.00"), months=60)


def months_ago(count: int) -> date:
    """The day `count` calendar months before today (clamped like the schedule's due dates)."""
    return schedule.add_months(timezone.localdate(), -count)


def disbursed(
    *, principal: str = "10000.00", months: int = 12, on: date | None = None, customer_id: int = CUSTOMER_ID
) -> Loan:
    """A loan created, approved (dated back to `on`) and disbursed on `on` (default 13 months ago)."""
    on = on or months_ago(13)
    loan = services.create_loan(agent_id=AGENT_ID, customer_id=customer_id, principal=Decimal(principal), months=months)
    services.decide_loan(loan_id=loan.id, admin_id=ADMIN_ID, status="APPROVED")
    approved_at = timezone.make_aware(datetime.combine(on, time(9)))
    Loan.objects.filter(pk=loan.id).update(decided_at=approved_at)
    return servicing.disburse_loan(loan_id=loan.id, admin_id=ADMIN_ID, on=on)


@pytest.fixture
def make_disbursed(db):
    return disbursed


def repay(api: Api, loan_id: int, amount, on: date | None = None, *, key: str | None = None):
    """POST a repayment with a fresh Idempotency-Key (or `key`)."""
    body = {"amount": str(amount)} | ({"date": on.isoformat()} if on else {})
    return api.post(
        f"/api/loan/{loan_id}/repayments", body, format="json", HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4())
    )
