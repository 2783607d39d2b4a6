"""The portfolio and collections reports: every figure recomputed from the rows, for random books, on any day."""

import contextlib
import csv
import io
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from common.errors import InvalidInput
from loans import ledger, reports, services, servicing
from loans.daily import run_daily
from loans.models import STATUSES, Loan
from loans.schedule import add_months
from loans.selectors import movements_of, terms_of
from tests.conftest import ADMIN_ID, AGENT_ID, CUSTOMER_ID, OTHER_CUSTOMER_ID, Api, disbursed, repay

pytestmark = pytest.mark.django_db

OTHER_AGENT_ID = AGENT_ID + 100
ZERO = Decimal("0.00")
BOOKS = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])


# ----------------------------------------------------------------------------- recomputation from the rows


def expected_portfolio(as_of, start, agent_id=None) -> dict:
    """The portfolio as the rows say, loan by loan: each disbursed loan's transactions replayed up to as_of."""
    figures = {status: [0, ZERO] for status in STATUSES}
    money = dict.fromkeys(["disbursed", "op", "oi", "of", *(f"par{d}" for d in reports.PAR_DAYS)], ZERO)
    collected = dict.fromkeys(["amount", "principal", "interest", "fees"], ZERO)
    disbursed_in_period = [0, ZERO]
    for loan in Loan.objects.all():
        if agent_id is not None and loan.agent_id != agent_id:
            continue
        paid_out = loan.disbursed_on is not None and loan.disbursed_on <= as_of
        if timezone.localdate(loan.created_at) > as_of and not paid_out:
            continue
        transactions = list(loan.transactions.order_by("on", "id"))
        if paid_out:
            full = ledger.replay(terms_of(loan), movements_of(transactions))
            then = ledger.state_on(terms_of(loan), movements_of(transactions), as_of)
            status = "WRITTEN_OFF" if then.is_written_off else "CLOSED" if then.is_paid_off else "DISBURSED"
            money["disbursed"] += loan.principal
            money["op"] += then.outstanding_principal
            money["oi"] += then.outstanding_interest
            money["of"] += then.outstanding_fees
            late = then.arrears(as_of).days_past_due
            for days in reports.PAR_DAYS:
                if status == "DISBURSED" and late > days:
                    money[f"par{days}"] += then.outstanding_principal
            for tx in transactions:
                if tx.kind == "repayment" and not tx.is_reversed and start <= tx.on <= as_of:
                    part = full.allocations[tx.id]
                    collected["amount"] += tx.amount
                    collected["principal"] += part.principal
                    collected["interest"] += part.interest
                    collected["fees"] += part.fee
        elif loan.cancelled_on and loan.cancelled_on <= as_of:
            status = "CANCELLED"
        elif loan.decided_at and timezone.localdate(loan.decided_at) <= as_of:
            status = "REJECTED" if loan.status == "REJECTED" else "APPROVED"
        else:
            status = "NEW"
        if loan.disbursed_on and start <= loan.disbursed_on <= as_of:
            disbursed_in_period[0] += 1
            disbursed_in_period[1] += loan.principal
        figures[status][0] += 1
        figures[status][1] += loan.principal

    def par(part):
        return (part / money["op"]).quantize(Decimal("0.0001"), ROUND_HALF_UP) if money["op"] else Decimal("0.0000")

    return {
        "as_of": as_of,
        "from": start,
        "loans": {status: {"count": count, "principal": principal} for status, (count, principal) in figures.items()},
        "loans_total": sum(count for count, _ in figures.values()),
        "disbursed_principal": money["disbursed"],
        "outstanding_principal": money["op"],
        "outstanding_interest": money["oi"],
        "outstanding_fees": money["of"],
        "total_outstanding": money["op"] + money["oi"] + money["of"],
        "disbursed_in_period": {"count": disbursed_in_period[0], "principal": disbursed_in_period[1]},
        "collected_in_period": collected,
        "at_risk_principal": {f"par{d}": money[f"par{d}"] for d in reports.PAR_DAYS},
        "par": {f"par{d}": par(money[f"par{d}"]) for d in reports.PAR_DAYS},
    }


def expected_collections(start, end, today) -> dict:
    """Collections by month as the instalment and transaction rows say."""
    months = {}
    for first in reports.months_between(start, end):
        months[first.strftime("%Y-%m")] = dict.fromkeys(["due", "paid", "overdue", "written_off", "collected"], ZERO)
    for loan in Loan.objects.all():
        for row in loan.instalments.all():
            if not start <= row.due_date <= end:
                continue
            month = months[row.due_date.strftime("%Y-%m")]
            unpaid = row.principal_due - row.principal_paid + row.interest_due - row.interest_paid
            month["due"] += row.principal_due + row.interest_due
            month["paid"] += row.principal_paid + row.interest_paid
            if loan.status == "WRITTEN_OFF":
                month["written_off"] += unpaid
            elif row.due_date < today:
                month["overdue"] += unpaid
        for tx in loan.transactions.filter(kind="repayment", reversed_at__isnull=True):
            if start <= tx.on <= end:
                months[tx.on.strftime("%Y-%m")]["collected"] += tx.amount
    return months


# ----------------------------------------------------------------------------- random books


def _at(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(10)))


@st.composite
def books(draw) -> list[dict]:
    """A few loans: when each was requested, whether it was decided, paid out, repaid, reversed, written off."""
    plans = []
    for _ in range(draw(st.integers(1, 5))):
        plans.append(
            {
                "agent_id": draw(st.sampled_from([AGENT_ID, OTHER_AGENT_ID])),
                "customer_id": draw(st.sampled_from([CUSTOMER_ID, OTHER_CUSTOMER_ID])),
                "principal": Decimal(draw(st.sampled_from([10000, 25000, 60000, 250000]))),
                "months": draw(st.integers(3, 18)),
                "requested": draw(st.integers(40, 700)),  # days ago
                "fate": draw(st.sampled_from(["new", "rejected", "approved", "cancelled", *["disbursed"] * 4])),
                "payments": draw(st.lists(st.tuples(st.integers(0, 700), st.integers(1, 250)), max_size=8)),
                "reverse": draw(st.booleans()),
                "daily": draw(st.lists(st.integers(0, 700), max_size=3)),
                "write_off": draw(st.booleans()),
                "dated": draw(st.sampled_from([True, True, True, False])),
            }
        )
    return plans


def _build(plan: dict, today) -> None:
    requested = today - timedelta(days=plan["requested"])
    loan = services.create_loan(
        agent_id=plan["agent_id"], customer_id=plan["customer_id"], principal=plan["principal"], months=plan["months"]
    )
    if plan["dated"]:  # else only the decision and the payout are set back, as an operator may do
        Loan.objects.filter(pk=loan.pk).update(created_at=_at(requested))
    if plan["fate"] == "new":
        return
    decision = "REJECTED" if plan["fate"] == "rejected" else "APPROVED"
    services.decide_loan(loan_id=loan.pk, admin_id=ADMIN_ID, status=decision)
    decided = requested + timedelta(days=min(3, plan["requested"] - 35))
    Loan.objects.filter(pk=loan.pk).update(decided_at=_at(decided))
    if plan["fate"] == "cancelled":
        servicing.cancel_loan(loan_id=loan.pk, admin_id=ADMIN_ID)
    if plan["fate"] != "disbursed":
        return
    paid_out = decided + timedelta(days=plan["requested"] % 20)
    servicing.disburse_loan(loan_id=loan.pk, admin_id=ADMIN_ID, on=paid_out)
    loan.refresh_from_db()
    span = (today - paid_out).days
    for days, share in plan["payments"]:
        on = paid_out + timedelta(days=days % (span + 1))
        amount = (loan.emi * share / 100).quantize(Decimal("0.01"))
        # More than the payoff, or already closed: refused as the API refuses it.
        with contextlib.suppress(InvalidInput, servicing.LoanNotActive):
            servicing.record_repayment(loan_id=loan.pk, user_id=AGENT_ID, amount=amount, on=on)
    for days in plan["daily"]:
        run_daily(as_of=paid_out + timedelta(days=days % (span + 1)))
    repayments = list(loan.transactions.filter(kind="repayment").order_by("id"))
    if plan["reverse"] and repayments:
        servicing.reverse_transaction(
            loan_id=loan.pk, transaction_id=repayments[len(repayments) // 2].pk, admin_id=ADMIN_ID, note="bounced"
        )
    loan.refresh_from_db()
    if plan["write_off"] and loan.status == "DISBURSED":
        with contextlib.suppress(servicing.LoanNotInArrears):  # not late enough: refused as the API refuses it
            servicing.write_off_loan(loan_id=loan.pk, admin_id=ADMIN_ID, note="gone")


def _days_to_check(today) -> list:
    """Today, every transaction date and the day before each, each due date, and a few others."""
    days = {today, today - timedelta(days=1), today - timedelta(days=365)}
    for loan in Loan.objects.all():
        days.add(timezone.localdate(loan.created_at))
        for tx in loan.transactions.all():
            days |= {tx.on, tx.on - timedelta(days=1)}
        for row in loan.instalments.all():
            days |= {row.due_date, row.due_date + timedelta(days=31)}
    return sorted(day for day in days if day <= today)


@BOOKS
@given(books(), st.integers(0, 60), st.randoms(use_true_random=False))
def test_the_portfolio_on_any_day_is_the_rows_replayed_to_the_cent(plans, period_days, random):
    today = timezone.localdate()
    with transaction.atomic():
        for plan in plans:
            _build(plan, today)
        days = _days_to_check(today)
        for as_of in [today, *random.sample(days, min(12, len(days)))]:
            start = as_of - timedelta(days=period_days)
            assert reports.portfolio(as_of=as_of, period_start=start) == expected_portfolio(as_of, start), as_of
            agent = reports.portfolio(as_of=as_of, period_start=start, agent_id=AGENT_ID)
            assert {key: agent[key] for key in ("loans", "outstanding_principal", "par")} == {
                key: expected_portfolio(as_of, start, AGENT_ID)[key]
                for key in ("loans", "outstanding_principal", "par")
            }
        # Today's figures come from the kept slices: the loan rows' own sums; folding them changes nothing.
        before = reports.portfolio(as_of=today, period_start=today)
        services.compact_portfolio()
        assert reports.portfolio(as_of=today, period_start=today) == before
        assert services.rebuild_portfolio() is True
        transaction.set_rollback(True)


@BOOKS
@given(books(), st.integers(0, 24), st.integers(0, 30))
def test_collections_by_month_are_the_instalment_and_transaction_rows(plans, months_back, span):
    today = timezone.localdate()
    with transaction.atomic():
        for plan in plans:
            _build(plan, today)
        start = add_months(today, -months_back) - timedelta(days=span)
        end = add_months(start, span % 14)
        report = reports.collections(start=start, end=end, today=today)
        expected = expected_collections(start, end, today)
        assert [row["month"] for row in report["months"]] == list(expected)
        for row in report["months"]:
            values = expected[row["month"]]
            assert {name: row[name] for name in values} == values, row["month"]
            assert row["collection_rate"] == reports.ratio(values["paid"], values["due"])
        assert report["totals"]["due"] == sum((values["due"] for values in expected.values()), ZERO)
        transaction.set_rollback(True)


# ----------------------------------------------------------------------------- the API


def test_the_portfolio_of_a_small_book_through_the_api(admin_api, agent_api):
    disbursed(principal="10000.00", months=12)  # 13 months ago, nothing paid since
    current = disbursed(principal="15000.00", months=6, on=timezone.localdate() - timedelta(days=10))
    repay(agent_api, current.pk, "100.00")
    services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("12000"), months=6)

    response = admin_api.get("/api/loan/reports/portfolio")

    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["as_of"] == timezone.localdate().isoformat()
    assert data["loans"]["DISBURSED"] == {"count": 2, "principal": "25000.00"}
    assert data["loans"]["NEW"] == {"count": 1, "principal": "12000.00"}
    assert data["loans_total"] == 3
    assert data["disbursed_principal"] == "25000.00"
    current.refresh_from_db()
    assert Decimal(data["outstanding_principal"]) == Decimal("10000.00") + current.outstanding_principal
    assert data["collected_in_period"]["amount"] == "100.00"
    # The late loan is more than 90 days past due: all of its principal is at risk at every threshold.
    assert data["at_risk_principal"]["par90"] == "10000.00"
    assert data["par"]["par90"] == str(reports.ratio(Decimal("10000.00"), Decimal(data["outstanding_principal"])))


def test_an_agent_sees_the_report_of_their_own_loans(agent_api):
    disbursed(principal="10000.00")
    services.create_loan(agent_id=OTHER_AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal(17000), months=6)

    data = agent_api.get("/api/loan/reports/portfolio?by=agent").json()["data"]

    assert data["loans_total"] == 1
    assert [line["agent_id"] for line in data["agents"]] == [AGENT_ID]
    admin = Api().as_role("admin", ADMIN_ID).get("/api/loan/reports/portfolio?by=agent").json()["data"]
    assert [line["agent_id"] for line in admin["agents"]] == [AGENT_ID, OTHER_AGENT_ID]
    assert admin["agents"][1]["loans"]["NEW"] == {"count": 1, "principal": "17000.00"}


@pytest.mark.parametrize(
    ("role", "approved", "status"), [("customer", True, 403), ("agent", False, 403), (None, True, 401)]
)
@pytest.mark.parametrize("report", ["portfolio", "collections"])
def test_customers_unapproved_agents_and_strangers_get_no_report(role, approved, status, report):
    api = Api().as_role(role, 55, is_approved=approved) if role else Api()

    response = api.get(f"/api/loan/reports/{report}")

    assert response.status_code == status
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("as_of=2999-01-01", "as_of"),
        ("as_of=yesterday", "as_of"),
        ("as_of=2026-02-30", "as_of"),
        ("from=2026-05-02&as_of=2026-05-01", "from"),
        ("by=customer", "by"),
        ("format=xml", "format"),
    ],
)
def test_bad_portfolio_queries_are_400_naming_the_field(admin_api, query, field):
    response = admin_api.get(f"/api/loan/reports/portfolio?{query}")

    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert field in body["error"]["details"]
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("query", "field"),
    [("from=2026-06-01&to=2026-05-01", "from"), ("from=2000-01-01&to=2026-01-01", "from"), ("to=soon", "to")],
)
def test_bad_collections_queries_are_400_naming_the_field(admin_api, query, field):
    response = admin_api.get(f"/api/loan/reports/collections?{query}")

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="')
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_portfolio_as_csv_has_a_header_and_a_line_per_agent_and_the_total(admin_api):
    disbursed(principal="10000.00")
    services.create_loan(agent_id=OTHER_AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal(17000), months=6)

    rows = _csv(admin_api.get("/api/loan/reports/portfolio?by=agent&format=csv", HTTP_ACCEPT="application/json"))

    header, *lines = rows
    assert header[:4] == ["agent_id", "as_of", "from", "loans_total"]
    assert "par30" in header
    assert [line[0] for line in lines] == [str(AGENT_ID), str(OTHER_AGENT_ID), "all"]
    total = dict(zip(header, lines[-1], strict=True))
    json_report = admin_api.get("/api/loan/reports/portfolio").json()["data"]
    assert total["outstanding_principal"] == json_report["outstanding_principal"]
    assert total["new_count"] == "1"
    assert total["par30"] == json_report["par"]["par30"]


def test_collections_as_csv_by_accept_header(admin_api, agent_api):
    loan = disbursed(principal="10000.00", months=12, on=add_months(timezone.localdate(), -3))
    repay(agent_api, loan.pk, loan.emi)

    response = admin_api.get("/api/loan/reports/collections", HTTP_ACCEPT="text/csv")

    header, *lines = _csv(response)
    assert header == ["month", "due", "paid", "overdue", "written_off", "collected", "collection_rate"]
    assert len(lines) == 13  # twelve months and the total
    assert lines[-1][0] == "total"
    assert lines[-1][5] == str(loan.emi)  # collected
    json_report = admin_api.get("/api/loan/reports/collections").json()["data"]
    assert [line[0] for line in lines[:-1]] == [row["month"] for row in json_report["months"]]
