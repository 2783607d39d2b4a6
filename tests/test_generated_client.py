"""A Python client generated from the gateway's OpenAPI document drives the whole story: no hand-written HTTP.

The module generates it with openapi-python-client (requirements/dev.txt) from
the running gateway's /api/openapi.json into a temporary folder, fails on any
warning of the generator (a part of the document it could not turn into code is
a defect of the document), imports it, and then signs up, signs in, approves an
agent, requests, decides and disburses a loan, repays it with an
Idempotency-Key and reads the customer's notifications through it alone.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

import manage_all
from tests.actors import PASSWORD, totp_code, unique_email
from tests.harness import wait_for

CONFIG = Path(__file__).resolve().parent / "openapi_client.yml"
PACKAGE = "lms_generated_client"


@pytest.fixture(scope="module")
def lms(system, tmp_path_factory):
    """The generated package, imported: `lms.api.api.<operation>`, `lms.models.<Model>`, `lms.Client`."""
    folder = tmp_path_factory.mktemp("generated-client")
    document = folder / "openapi.json"
    with urllib.request.urlopen(f"{system.url()}/api/openapi.json", timeout=15) as reply:  # setup, not the story
        document.write_text(json.dumps(json.load(reply)))
    generator = Path(manage_all.python()).with_name("openapi-python-client")
    arguments = ["generate", "--path", str(document), "--meta", "none", "--output-path", str(folder / PACKAGE)]
    result = subprocess.run(
        [str(generator), *arguments, "--config", str(CONFIG), "--fail-on-warning"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"the generator could not read the document:\n{result.stdout}\n{result.stderr}"
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


class Story:
    """The generated client's calls, each checked for the documented success reply."""

    def __init__(self, lms, base_url: str) -> None:
        self.lms, self.models, self.base_url = lms, importlib.import_module(f"{PACKAGE}.models"), base_url
        self.anonymous = lms.Client(base_url=base_url, raise_on_unexpected_status=True)

    def call(self, operation: str, status: int, **arguments):
        """The operation's typed reply; fails unless it is the documented `status` with success true."""
        response = importlib.import_module(f"{PACKAGE}.api.api.{operation}").sync_detailed(**arguments)
        assert response.status_code == status, (operation, response.status_code, response.content[:500])
        assert response.parsed is not None, (operation, response.content[:500])
        assert response.parsed.success is True, (operation, response.content[:500])
        return response.parsed.data

    def as_user(self, token: str):
        return self.lms.AuthenticatedClient(base_url=self.base_url, token=token, raise_on_unexpected_status=True)

    def sign_up(self, role: str) -> str:
        email = unique_email(f"sdk-{role}")
        body = self.models.UserSignupInputRequest(
            email=email, password=PASSWORD, role=self.models.UserSignupInputRoleEnum(role), first_name="Gen"
        )
        self.call("api_user_signup_create", 201, client=self.anonymous, body=body)
        return email

    def sign_in(self, email: str, totp_secret: str | None = None):
        """A signed-in user's client and their user; a second factor is answered when the reply asks for one."""
        body = self.models.UserLoginInputRequest(email=email, password=PASSWORD)
        signed_in = self.call("api_user_login_create", 200, client=self.anonymous, body=body)
        if isinstance(signed_in, self.models.UserMfaRequiredOutput):
            assert totp_secret, f"{email} has a second factor"
            answer = self.models.UserSecondFactorInputRequest(
                challenge=signed_in.challenge, code=totp_code(totp_secret)
            )
            signed_in = self.call("api_user_login_mfa_create", 200, client=self.anonymous, body=answer)
        signed_in_kinds = (self.models.UserSignedInOutput, self.models.UserSecondFactorSignedInOutput)
        assert isinstance(signed_in, signed_in_kinds), signed_in
        return self.as_user(signed_in.access), signed_in.user


def test_the_generated_client_runs_the_whole_story(system, admin, lms):
    story = Story(lms, system.url())
    models = story.models

    customer_email, agent_email = story.sign_up("customer"), story.sign_up("agent")
    customer, customer_user = story.sign_in(customer_email)
    _, agent_user = story.sign_in(agent_email)
    assert (customer_user.role, agent_user.role) == ("customer", "agent")
    assert agent_user.is_approved is False

    admin_client, admin_user = story.sign_in(admin.email, totp_secret=admin.totp_secret)
    assert admin_user.role == "admin"
    decision = models.UserAgentDecisionInputRequest(action=models.UserActionEnum("approve"))
    approved_agent = story.call(
        "api_user_approve_delete_update", 200, user_id=agent_user.id, client=admin_client, body=decision
    )
    assert approved_agent.is_approved is True
    agent, _ = story.sign_in(agent_email)  # the approval ended the agent's sessions

    request = models.LoanCreateLoanInputRequest(customer_id=customer_user.id, principal="24000.00", months=12)
    loan = story.call("api_loan_customer_loan_create", 201, client=agent, body=request)
    assert (loan.status, loan.customer_id, loan.agent_id) == ("NEW", customer_user.id, agent_user.id)
    assert Decimal(loan.principal) == Decimal("24000.00")

    verdict = models.LoanDecideLoanInputRequest(status=models.LoanDecideLoanInputStatusEnum("APPROVED"))
    decided = story.call("api_loan_approve_reject_loan_update", 200, loan_id=loan.id, client=admin_client, body=verdict)
    assert (decided.status, decided.decided_by) == ("APPROVED", admin_user.id)

    disbursed = story.call(
        "api_loan_disburse_create", 200, loan_id=loan.id, client=admin_client, idempotency_key=uuid.uuid4().hex
    )
    assert (disbursed.status, disbursed.disbursed_by) == ("DISBURSED", admin_user.id)
    assert Decimal(disbursed.outstanding_principal) == Decimal("24000.00")

    key = uuid.uuid4().hex
    payment = models.LoanRepaymentInputRequest(amount=decided.emi)
    repaid = story.call(
        "api_loan_repayments_create", 201, loan_id=loan.id, client=agent, body=payment, idempotency_key=key
    )
    again = story.call(
        "api_loan_repayments_create", 201, loan_id=loan.id, client=agent, body=payment, idempotency_key=key
    )
    assert again.transaction.id == repaid.transaction.id  # the same key: the same repayment, booked once
    booked = repaid.transaction
    assert (booked.kind, Decimal(booked.amount)) == ("repayment", Decimal(decided.emi))
    assert Decimal(booked.principal) + Decimal(booked.interest) + Decimal(booked.fee) == Decimal(decided.emi)
    paid_down = Decimal(disbursed.outstanding_principal) - Decimal(repaid.loan.outstanding_principal)
    assert paid_down == Decimal(booked.principal) > 0
    mine = story.call("api_loan_retrieve", 200, loan_id=loan.id, client=customer)
    assert mine.outstanding_principal == repaid.loan.outstanding_principal

    def notified() -> list:
        page = story.call("api_notifications_retrieve", 200, client=customer, kind="loan.approved")
        return [item for item in page.results if item.channel == "in_app"]

    (in_app,) = wait_for(notified, timeout=30, message="the customer's loan.approved notification in the app")
    assert str(loan.id) in in_app.subject
    read = story.call("api_notifications_read_create", 200, notification_id=in_app.id, client=customer)
    assert read.read_at is not None
    unread = story.call("api_notifications_retrieve", 200, client=customer, kind="loan.approved", unread=True)
    assert in_app.id not in [item.id for item in unread.results]
