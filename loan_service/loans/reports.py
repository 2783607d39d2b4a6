# ruff: noqa: S608 -- every name put into the SQL is a constant of this module; values are parameters.
"""The portfolio and collections reports: what is out, what came in, who is late.

Every figure is a sum over the loan, instalment and transaction rows, computed by the database in
cents (exact on PostgreSQL's numeric and on SQLite, whose decimals are floats: each value is
rounded to a whole cent before it is added):

- **Portfolio on a day D** (end of day, as the ledger knows it now, so a backdated repayment or a
  reversal changes the past). A loan is in the book from the day it was created (or paid out, if
  its dates were set back by an operator). Once disbursed,
  its balance on D is the balance after its latest transaction dated on or before D (kept on each
  transaction by the replays, `LoanTransaction.*_after`), and its days past due are counted from
  that balance's `unpaid_since` (ledger.Balance). On today's date (no transaction is ever dated in
  the future) the loan row's own kept balances are that latest balance, so today's report reads
  the loan table alone. Before disbursement, a loan's status on D follows its decision and
  cancellation dates; an undecided loan counts with its current terms.
- **PAR N** is the outstanding principal of the loans more than N days past due over all
  outstanding principal, rounded half-up to four decimals (0 when nothing is outstanding).
- **Collections by month**: what fell due (principal and interest of the instalments due in the
  month, as the schedule stands now), what of that is paid, what is still unpaid and past due today
  (of loans not written off) or was written off, and the cash collected in the month (repayments
  by value date, not reversed). The collection rate is paid over due.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.utils import timezone

from loans.models import STATUSES, Instalment, Loan, LoanTransaction, PortfolioSlice
from loans.schedule import add_months

PAR_DAYS = (1, 30, 60, 90)
RATIO = Decimal("0.0001")
MONEY = ["principal", "outstanding_principal", "outstanding_interest", "outstanding_fees"]
AT_RISK = [f"par{days}_principal" for days in PAR_DAYS]

LOAN = Loan._meta.db_table
TRANSACTION = LoanTransaction._meta.db_table
INSTALMENT = Instalment._meta.db_table
SLICE = PortfolioSlice._meta.db_table
UNPAID = "i.principal_due - i.principal_paid + i.interest_due - i.interest_paid"


def _cents(expression: str) -> str:
    """SUM of a money expression in whole cents, exact on both databases."""
    if connection.vendor == "sqlite":
        return f"SUM(ROUND(({expression}) * 100))"
    return f"SUM({expression}) * 100"


def _money(cents) -> Decimal:
    return (Decimal(int(cents)) / 100).quantize(Decimal("0.01")) if cents is not None else Decimal("0.00")


def ratio(part: Decimal, whole: Decimal) -> Decimal:
    """part / whole to four decimals, half-up; 0 when `whole` is 0."""
    return (part / whole).quantize(RATIO, rounding=ROUND_HALF_UP) if whole else Decimal("0.0000")


@dataclass
class Book:
    """One agent's (or the whole) portfolio on a day."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    principal: dict[str, Decimal] = field(default_factory=lambda: {status: Decimal("0.00") for status in STATUSES})
    money: dict[str, Decimal] = field(default_factory=lambda: {name: Decimal("0.00") for name in MONEY[1:] + AT_RISK})
    disbursed_principal: Decimal = Decimal("0.00")
    disbursed_in_period: int = 0
    disbursed_in_period_principal: Decimal = Decimal("0.00")
    collected: dict[str, Decimal] = field(
        default_factory=lambda: {name: Decimal("0.00") for name in ("amount", "principal", "interest", "fees")}
    )

    def add(self, other: Book) -> None:
        for status in STATUSES:
            self.counts[status] += other.counts[status]
            self.principal[status] += other.principal[status]
        for name in self.money:
            self.money[name] += other.money[name]
        for name in self.collected:
            self.collected[name] += other.collected[name]
        self.disbursed_principal += other.disbursed_principal
        self.disbursed_in_period += other.disbursed_in_period
        self.disbursed_in_period_principal += other.disbursed_in_period_principal

    def figures(self) -> dict:
        outstanding = self.money["outstanding_principal"]
        return {
            "loans": {
                status: {"count": self.counts[status], "principal": self.principal[status]} for status in STATUSES
            },
            "loans_total": sum(self.counts.values()),
            "disbursed_principal": self.disbursed_principal,
            "outstanding_principal": outstanding,
            "outstanding_interest": self.money["outstanding_interest"],
            "outstanding_fees": self.money["outstanding_fees"],
            "total_outstanding": outstanding + self.money["outstanding_interest"] + self.money["outstanding_fees"],
            "disbursed_in_period": {"count": self.disbursed_in_period, "principal": self.disbursed_in_period_principal},
            "collected_in_period": dict(self.collected),
            "at_risk_principal": {f"par{days}": self.money[f"par{days}_principal"] for days in PAR_DAYS},
            "par": {f"par{days}": ratio(self.money[f"par{days}_principal"], outstanding) for days in PAR_DAYS},
        }


def _end_of(day: date) -> datetime:
    """The first instant after `day` in the service's time zone."""
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def _book_rows(as_of: date, agent_id: int | None) -> tuple[str, list]:
    """SQL of the book on `as_of`, as rows of (agent_id, s: status, n: loans, principal, disbursed: principal paid
    out, op / oi / ofee: outstanding principal / interest / fees, since: unpaid_since); one row per loan on a
    past day, one per kept slice today."""
    agent = "AND l.agent_id = %s" if agent_id is not None else ""
    params = [agent_id] if agent_id is not None else []
    if as_of >= timezone.localdate():
        # Nothing is dated after today: every loan's latest balance is in the kept slices of the loan rows.
        sql = f"""
            SELECT agent_id, status AS s, loans AS n, principal, disbursed_principal AS disbursed,
                   outstanding_principal AS op, outstanding_interest AS oi, outstanding_fees AS ofee,
                   unpaid_since AS since
            FROM {SLICE} {"WHERE agent_id = %s" if agent_id is not None else ""}"""
        return sql, params
    if connection.vendor == "postgresql":
        # Each loan's first row in the index transaction_loan_on read backward (no sort of the rows).
        latest = f"""
            SELECT DISTINCT ON (t.loan_id) t.loan_id, t.kind, t.principal_after, t.interest_after,
                   t.fees_after, t.unpaid_since
            FROM {TRANSACTION} t WHERE t."on" <= %s AND t.principal_after IS NOT NULL
            ORDER BY t.loan_id DESC, t."on" DESC, t.id DESC"""
    else:
        latest = f"""
            SELECT * FROM (
                SELECT t.loan_id, t.kind, t.principal_after, t.interest_after, t.fees_after, t.unpaid_since,
                       ROW_NUMBER() OVER (PARTITION BY t.loan_id ORDER BY t."on" DESC, t.id DESC) AS position
                FROM {TRANSACTION} t WHERE t."on" <= %s AND t.principal_after IS NOT NULL
            ) ranked WHERE position = 1"""
    sql = f"""
        WITH latest AS ({latest})
        SELECT l.agent_id AS agent_id, 1 AS n,
               CASE WHEN b.loan_id IS NOT NULL THEN
                        CASE WHEN b.kind = 'write_off' THEN 'WRITTEN_OFF'
                             WHEN b.principal_after + b.interest_after + b.fees_after = 0 THEN 'CLOSED'
                             ELSE 'DISBURSED' END
                    WHEN l.cancelled_on <= %s THEN 'CANCELLED'
                    WHEN l.decided_at < %s THEN CASE WHEN l.status = 'REJECTED' THEN 'REJECTED' ELSE 'APPROVED' END
                    ELSE 'NEW' END AS s,
               l.principal AS principal, CASE WHEN b.loan_id IS NOT NULL THEN l.principal ELSE 0 END AS disbursed,
               COALESCE(b.principal_after, 0) AS op,
               COALESCE(b.interest_after, 0) AS oi, COALESCE(b.fees_after, 0) AS ofee, b.unpaid_since AS since
        FROM {LOAN} l LEFT JOIN latest b ON b.loan_id = l.id
        WHERE (l.created_at < %s OR b.loan_id IS NOT NULL) {agent}"""
    end = _end_of(as_of)
    return sql, [as_of, as_of, end, end, *params]


def _books(as_of: date, period_start: date, agent_id: int | None, by_agent: bool) -> dict[int | None, Book]:
    rows, row_params = _book_rows(as_of, agent_id)
    at_risk = ", ".join(
        _cents("CASE WHEN book.s = 'DISBURSED' AND book.since < %s THEN book.op ELSE 0 END") for _ in PAR_DAYS
    )
    sql = f"""
        SELECT book.agent_id, book.s, SUM(book.n), {_cents("book.principal")}, {_cents("book.disbursed")},
               {_cents("book.op")}, {_cents("book.oi")}, {_cents("book.ofee")}, {at_risk}
        FROM ({rows}) AS book
        GROUP BY book.agent_id, book.s"""
    params = [as_of - timedelta(days=days) for days in PAR_DAYS] + row_params
    books: dict[int, Book] = defaultdict(Book)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for agent, status, count, principal, disbursed, *money in cursor.fetchall():
            book = books[agent]
            book.counts[status] += int(count)
            book.principal[status] += _money(principal)
            book.disbursed_principal += _money(disbursed)
            for name, cents in zip(MONEY[1:] + AT_RISK, money, strict=True):
                book.money[name] += _money(cents)
    _add_period(books, as_of, period_start, agent_id, by_agent)
    return books


def _add_period(books: dict, as_of: date, period_start: date, agent_id: int | None, by_agent: bool) -> None:
    """What was disbursed and collected from `period_start` to `as_of`, both included.

    Only the figures by agent need the loans of the period's repayments; the total (book None) reads
    the repayments alone."""
    agent = "AND l.agent_id = %s" if agent_id is not None else ""
    params = [period_start, as_of] + ([agent_id] if agent_id is not None else [])
    money = f"{_cents('t.amount')}, {_cents('t.principal_portion')}, {_cents('t.interest_portion')}, " + _cents(
        "t.fee_portion"
    )
    repaid = """t.kind = 'repayment' AND t.reversed_at IS NULL AND t."on" BETWEEN %s AND %s"""
    if by_agent or agent_id is not None:
        collected = f"""
            SELECT l.agent_id, {money} FROM {TRANSACTION} t JOIN {LOAN} l ON l.id = t.loan_id
            WHERE {repaid} {agent} GROUP BY l.agent_id"""
    else:
        collected = f"SELECT NULL, {money} FROM {TRANSACTION} t WHERE {repaid}"
    disbursed = f"""
        SELECT l.agent_id, COUNT(*), {_cents("l.principal")}
        FROM {LOAN} l WHERE l.disbursed_on BETWEEN %s AND %s {agent} GROUP BY l.agent_id"""
    with connection.cursor() as cursor:
        cursor.execute(collected, params)
        for agent, *cents in cursor.fetchall():
            if cents[0] is None:
                continue  # no repayment in the period
            for name, value in zip(("amount", "principal", "interest", "fees"), cents, strict=True):
                books[agent].collected[name] += _money(value)
        cursor.execute(disbursed, params)
        for agent, count, principal in cursor.fetchall():
            books[agent].disbursed_in_period += count
            books[agent].disbursed_in_period_principal += _money(principal)


def portfolio(*, as_of: date, period_start: date, agent_id: int | None = None, by_agent: bool = False) -> dict:
    """The portfolio on `as_of`, with what was disbursed and collected since `period_start`.

    `agent_id` limits it to that agent's loans; `by_agent` adds one entry per agent.
    """
    books = _books(as_of, period_start, agent_id, by_agent)
    total = Book()
    for book in books.values():
        total.add(book)
    report = {"as_of": as_of, "from": period_start, **total.figures()}
    if by_agent:
        report["agents"] = [{"agent_id": agent, **books[agent].figures()} for agent in sorted(books)]
    return report


def months_between(start: date, end: date) -> list[date]:
    """The first day of every month from `start`'s to `end`'s."""
    month, months = start.replace(day=1), []
    while month <= end:
        months.append(month)
        month = add_months(month, 1)
    return months


def collections(*, start: date, end: date, agent_id: int | None = None, today: date | None = None) -> dict:
    """By month from `start` to `end` (days outside them left out): due, paid, overdue, written off, collected."""
    today = today or timezone.localdate()
    agent = "AND l.agent_id = %s" if agent_id is not None else ""
    extra = [agent_id] if agent_id is not None else []
    month = "strftime('%%Y-%%m', {0})" if connection.vendor == "sqlite" else "to_char({0}, 'YYYY-MM')"
    due = f"""
        SELECT {month.format("i.due_date")},
               {_cents("i.principal_due + i.interest_due")},
               {_cents("i.principal_paid + i.interest_paid")},
               {_cents(f"CASE WHEN l.status <> 'WRITTEN_OFF' AND i.due_date < %s THEN {UNPAID} ELSE 0 END")},
               {_cents(f"CASE WHEN l.status = 'WRITTEN_OFF' THEN {UNPAID} ELSE 0 END")}
        FROM {INSTALMENT} i JOIN {LOAN} l ON l.id = i.loan_id
        WHERE i.due_date BETWEEN %s AND %s {agent}
        GROUP BY 1"""
    collected = f"""
        SELECT {month.format('t."on"')}, {_cents("t.amount")}
        FROM {TRANSACTION} t JOIN {LOAN} l ON l.id = t.loan_id
        WHERE t.kind = 'repayment' AND t.reversed_at IS NULL AND t."on" BETWEEN %s AND %s {agent}
        GROUP BY 1"""
    figures: dict[str, dict] = {
        first.strftime("%Y-%m"): dict.fromkeys(("due", "paid", "overdue", "written_off", "collected"), Decimal("0.00"))
        for first in months_between(start, end)
    }
    with connection.cursor() as cursor:
        cursor.execute(due, [today, start, end, *extra])
        for key, *cents in cursor.fetchall():
            for name, value in zip(("due", "paid", "overdue", "written_off"), cents, strict=True):
                figures[key][name] = _money(value)
        cursor.execute(collected, [start, end, *extra])
        for key, cents in cursor.fetchall():
            figures[key]["collected"] = _money(cents)
    rows = [
        {"month": key, **values, "collection_rate": ratio(values["paid"], values["due"])}
        for key, values in figures.items()
    ]
    totals = {
        name: sum((row[name] for row in rows), Decimal("0.00"))
        for name in ("due", "paid", "overdue", "written_off", "collected")
    }
    return {
        "from": start,
        "to": end,
        "months": rows,
        "totals": {**totals, "collection_rate": ratio(totals["paid"], totals["due"])},
    }
