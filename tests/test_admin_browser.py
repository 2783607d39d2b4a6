"""The operators' Django admin in a real headless Chromium, against the running system's services.

Each admin is on its service's own port (System.url). Agents, customers and loans come through the
gateway's API as in the stories; what an operator does is done in the browser, and its result is read
back through the API. Without Chromium, its driver or Selenium every test here is skipped, with why.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pyotp
import pytest

from tests import browser as chromium
from tests.actors import PASSWORD, approved_agent, requested_loan, sign_in, sign_up

ADMINS = ["user", "loan", "notification"]
FIGURES = ["loans_disbursed", "outstanding_principal", "collected_in_period", "par30"]
UNAVAILABLE = chromium.unavailable()
# Decided before any fixture, so a machine without the browser does not start the system for nothing.
pytestmark = pytest.mark.skipif(bool(UNAVAILABLE), reason=f"browser tests skipped: {UNAVAILABLE}")


@pytest.fixture(scope="module")
def browser():
    running = chromium.Browser()
    try:
        yield running
    finally:
        running.quit()


@pytest.fixture(autouse=True)
def fresh_browser(request, browser):
    """Every test starts signed out; a failed one leaves its last page under the artefacts."""
    browser.forget_sessions()
    yield browser
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        browser.keep_failure(f"failed-{request.node.name}")


RECHECK_SECONDS = 2  # ADMIN_ACCOUNT_RECHECK_SECONDS of the end-to-end system (tests/conftest.py)


def key() -> dict:
    return {"Idempotency-Key": str(uuid.uuid4())}


def test_a_customer_is_refused_at_every_admin(system, browser):
    customer = sign_up(system.gateway, "customer")

    for label in ADMINS:
        admin_url = f"{system.url(label)}/admin/"
        browser.submit_admin_sign_in(system.url(label), customer.email, PASSWORD)

        assert "/admin/login/" in browser.url, f"{label}: a customer got past the login form ({browser.url})"
        error = browser.element(".errornote").text
        assert "correct" in error, f"{label}: {error!r}"
        assert browser.cookie(f"{label}_service_sessionid") is None, f"{label}: a session was opened for a customer"
        browser.open(admin_url)
        assert "/admin/login/" in browser.url, f"{label}: the admin index opened without a session"
        browser.element("#login-form")


def test_an_admin_approves_a_waiting_agent_in_user_services_admin(system, admin, browser):
    gateway = system.gateway
    agent = sign_up(gateway, "agent")
    customer = sign_up(gateway, "customer")
    request = {"customer_id": customer.id, "principal": "10000.00", "months": 12}
    assert agent.api.post("/api/loan/customer-loan", request).status == 403  # waiting: no loans yet

    users = system.url("user")
    browser.sign_in_to_admin(users, admin.email, PASSWORD, totp_secret=admin.totp_secret)
    browser.search_changelist(f"{users}/admin/users/user/?role__exact=agent&approval__exact=pending", agent.email)
    row = browser.element(f'input.action-select[value="{agent.id}"]').find_element("xpath", "./ancestor::tr")
    assert "Waiting for approval" in row.text

    assert "1 user(s) approved." in browser.run_action(agent.id, "approve_agents")

    # The changelist still filters on pending agents: the approved one has left it.
    assert not browser.elements(f'input.action-select[value="{agent.id}"]')
    waiting = admin.api.get("/api/user/list-approvals?page_size=100")
    assert agent.id not in [user["id"] for user in waiting.data["results"]]
    # The approval ended the agent's sessions (its refresh token is revoked): a new sign-in carries it.
    agent = sign_in(gateway, agent.email)
    assert agent.api.get("/api/user/profile").data["is_approved"] is True
    created = agent.api.post("/api/loan/customer-loan", request)
    assert created.status == 201, created.body


def test_an_admin_of_user_service_decides_disburses_and_repays_a_loan_in_loan_services_admin(system, admin, browser):
    gateway = system.gateway
    customer, _, loan = requested_loan(gateway, admin, principal="10000.00", months=12)
    loan_id = loan["id"]
    api_path = f"/api/loan/{loan_id}"

    # One admin identity: user_service's admin signs in here; loan_service keeps no password.
    loans = system.url("loan")
    browser.sign_in_to_admin(loans, admin.email, PASSWORD, totp_secret=admin.totp_secret)
    browser.search_changelist(f"{loans}/admin/loans/loan/", loan_id)
    assert "1 loan(s) approved." in browser.run_action(loan_id, "approve_loans")
    decided = admin.api.get(api_path).data
    assert (decided["status"], decided["decided_by"]) == ("APPROVED", admin.id)

    browser.open(f"{loans}/admin/loans/loan/{loan_id}/change/")
    browser.follow_link("Disburse")
    assert browser.texts("h1") == [f"Disburse: loan #{loan_id}"]
    browser.follow(browser.element('form [type=submit][value="Disburse"]'))
    assert any(f"Loan #{loan_id} disbursed on" in message for message in browser.messages()), browser.messages()
    disbursed = admin.api.get(api_path).data
    assert disbursed["status"] == "DISBURSED"
    assert disbursed["disbursed_by"] == admin.id
    assert disbursed["total_outstanding"] == "10463.59"

    browser.follow_link("Post repayment")
    browser.element("#id_amount").send_keys("1000.00")
    browser.follow(browser.element('form [type=submit][value="Post repayment"]'))
    posted = [message for message in browser.messages() if "Repayment of 1,000.00 recorded" in message]
    assert posted, browser.messages()

    repaid = admin.api.get(api_path).data
    assert repaid["status"] == "DISBURSED"
    assert f"{Decimal(repaid['total_outstanding']):,.2f} still owed" in posted[0]
    assert Decimal(repaid["total_outstanding"]) < Decimal("10463.59")
    repayments = customer.api.get(f"{api_path}/repayments").data
    assert [tx["amount"] for tx in repayments["results"]] == ["1000.00"]
    # The loan's page shows the servicing its new status allows: no second disbursement.
    browser.open(f"{loans}/admin/loans/loan/{loan_id}/change/")
    tools = browser.texts(".object-tools a")
    assert "Post repayment" in tools
    assert "Disburse" not in tools


def read_figures(browser) -> dict[str, Decimal]:
    figures = {}
    for name in FIGURES:
        element = browser.element(f'[data-figure="{name}"]')
        figures[name] = chromium.number(element.get_attribute("data-value") or element.text)
    return figures


def test_the_portfolio_dashboard_shows_a_disbursed_and_repaid_loan(system, admin, browser):
    gateway = system.gateway
    loans = system.url("loan")
    browser.sign_in_to_admin(loans, admin.email, PASSWORD, totp_secret=admin.totp_secret)
    browser.follow_link("Portfolio dashboard")
    assert browser.url.split("?")[0].endswith("/admin/dashboard/"), browser.url
    before = read_figures(browser)

    customer = sign_up(gateway, "customer")
    agent = approved_agent(gateway, admin)
    loan = agent.api.post(
        "/api/loan/customer-loan", {"customer_id": customer.id, "principal": "10000.00", "months": 12}
    ).data
    api_path = f"/api/loan/{loan['id']}"
    assert admin.api.put(f"/api/loan/approve-reject-loan/{loan['id']}", {"status": "APPROVED"}).status == 200
    assert admin.api.post(f"{api_path}/disburse", {}, headers=key()).status == 200
    repaid = agent.api.post(f"{api_path}/repayments", {"amount": "1000.00"}, headers=key())
    assert repaid.status == 201, repaid.body
    now = admin.api.get(api_path).data

    browser.open(browser.url)  # the dashboard again, after the loan
    after = read_figures(browser)
    shot = browser.screenshot("admin-dashboard.png")  # kept (and listed at the end of the run) whatever follows
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert after["loans_disbursed"] - before["loans_disbursed"] == 1, (before, after)
    assert after["outstanding_principal"] - before["outstanding_principal"] == Decimal(now["outstanding_principal"])
    assert after["collected_in_period"] - before["collected_in_period"] == Decimal("1000.00"), (before, after)
    assert Decimal(0) <= after["par30"] <= Decimal(100)
    for chart in ("collections", "par"):
        assert browser.element(f'svg[data-chart="{chart}"]').is_displayed()
    assert browser.elements("table#overdue-today"), "no table#overdue-today"


def wrong_code(secret: str) -> str:
    """Six digits that are no code of `secret` in any time step user_service could accept around now."""
    step = int(time.time()) // 30
    near = {pyotp.TOTP(secret).at((step + offset) * 30) for offset in range(-2, 4)}
    return next(
        code for code in ("000000", "111111", "222222", "333333", "444444", "555555", "666666") if code not in near
    )


def test_an_admin_deactivated_at_user_service_loses_the_other_admins_within_the_recheck(system, admin, browser):
    gateway = system.gateway
    email = f"second-admin-{uuid.uuid4().hex[:8]}@example.com"
    created = admin.api.post("/api/user/create-admin", {"email": email, "password": PASSWORD})
    assert created.status == 201, created.body
    second = sign_in(gateway, email)  # sets up the second factor at the first sign-in
    loans, notifications, users = system.url("loan"), system.url("notification"), system.url("user")
    browser.sign_in_to_admin(loans, email, PASSWORD, totp_secret=second.totp_secret)
    browser.sign_in_to_admin(notifications, email, PASSWORD, totp_secret=second.totp_secret)

    # Another admin deactivates them in user_service's admin (each service's session cookie has its own name).
    browser.sign_in_to_admin(users, admin.email, PASSWORD, totp_secret=admin.totp_secret)
    browser.search_changelist(f"{users}/admin/users/user/", email)
    assert "1 user(s) deactivated." in browser.run_action(second.id, "deactivate_users")
    time.sleep(RECHECK_SECONDS + 1)

    for base in (loans, notifications):  # re-checked at user_service (loan), or told by user.deactivated (both)
        browser.open(f"{base}/admin/loans/loan/" if base == loans else f"{base}/admin/")
        assert "/admin/login/" in browser.url, f"{base}: still in at {browser.url}"


# Last in the file: its wrong code counts against the admin's per-email sign-in limit (10 a minute), which
# the other tests' sign-ins of the same admin share.
def test_loan_services_admin_refuses_a_wrong_authentication_code_and_takes_the_right_one(system, admin, browser):
    loans = system.url("loan")

    browser.submit_admin_sign_in(loans, admin.email, PASSWORD, wrong_code(admin.totp_secret))

    assert "/admin/login/" in browser.url, browser.url
    assert "authentication code is wrong" in browser.element(".errornote").text
    assert browser.cookie("loan_service_sessionid") is None
    assert browser.element("label[for=id_otp_code]").text.startswith("Authentication code")

    browser.sign_in_to_admin(loans, admin.email, PASSWORD, totp_secret=admin.totp_secret)
    browser.open(f"{loans}/admin/loans/loan/")
    assert browser.elements("#changelist-form"), browser.url
