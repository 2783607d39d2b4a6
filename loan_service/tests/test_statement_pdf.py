"""The loan statement PDF, read back with pypdf: no database, statements built from a real schedule."""

import dataclasses
import io
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pypdf
import pytest

from loans.schedule import ZERO, repayment
from loans.statement_pdf import StatementData, StatementLine, StatementTransaction, money, render_statement

START = date(2024, 1, 31)  # month-end start: the first due date is clamped to 2024-02-29
PAID_MONTHS = 3


def schedule_lines(principal: Decimal, rate: Decimal, months: int) -> tuple[StatementLine, ...]:
    """The loan's schedule with its first PAID_MONTHS instalments paid on their due dates."""
    lines = []
    for row in repayment(principal, rate, months, start=START).instalments:
        paid = row.month <= PAID_MONTHS
        lines.append(
            StatementLine(
                number=row.month,
                due_date=row.due_date,
                principal_due=row.principal,
                interest_due=row.interest,
                fee_due=ZERO,
                principal_paid=row.principal if paid else ZERO,
                interest_paid=row.interest if paid else ZERO,
                fee_paid=ZERO,
                paid_off_on=row.due_date if paid else None,
            )
        )
    return tuple(lines)


def transaction(number: int, kind: str, on: date, amount: str, **changes) -> StatementTransaction:
    money_parts = {"principal": Decimal(amount), "interest": ZERO, "fee": ZERO}
    return StatementTransaction(id=number, kind=kind, on=on, amount=Decimal(amount), **(money_parts | changes))


def statement(principal: str = "1000000.00", rate: str = "10.00", months: int = 60, **changes) -> StatementData:
    """A loan of 1,000,000.00 at 10 % over 60 months (EMI 21,247.04, API.md), three instalments paid."""
    lines = schedule_lines(Decimal(principal), Decimal(rate), months)
    repayments = tuple(
        transaction(2 + index, "repayment", line.due_date, str(line.principal_due + line.interest_due))
        for index, line in enumerate(lines[:PAID_MONTHS])
    )
    data = StatementData(
        loan_id=1042,
        customer_id=3,
        agent_id=7,
        status="APPROVED",
        principal=Decimal(principal),
        interest=Decimal(rate),
        months=months,
        emi=repayment(Decimal(principal), Decimal(rate), months).emi,
        disbursed_on=START,
        end_date=lines[-1].due_date,
        generated_at=datetime(2024, 5, 2, 8, 30, tzinfo=UTC),
        outstanding_principal=Decimal("961081.13"),
        outstanding_interest=Decimal("273486.76"),
        outstanding_fees=Decimal("0.00"),
        total_outstanding=Decimal("1234567.89"),
        days_past_due=2,
        next_due_date=lines[PAID_MONTHS].due_date,
        next_due_amount=Decimal("21247.04"),
        instalments=lines,
        transactions=(transaction(1, "disbursement", START, principal), *repayments),
    )
    return dataclasses.replace(data, **changes)


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def test_statement_is_a_pdf():
    assert render_statement(statement()).startswith(b"%PDF-")


def test_statement_shows_loan_number_total_due_date_and_repayment():
    text = "\n".join(pages_text(render_statement(statement())))

    assert "Loan #1042" in text
    assert "1,234,567.89" in text  # total outstanding
    assert "2024-02-29" in text  # first due date, clamped to the end of February
    assert "21,247.04" in text  # EMI, and each repayment of it


def test_reversed_transaction_is_marked():
    bounced = transaction(9, "repayment", date(2024, 5, 1), "21247.04", reversed=True, note="cheque bounced")
    data = statement()
    data = dataclasses.replace(data, transactions=(*data.transactions, bounced))

    text = "\n".join(pages_text(render_statement(data)))

    assert "reversed" in text
    assert "cheque bounced" in text


def test_statement_without_reversals_has_no_reversed_marker():
    text = "\n".join(pages_text(render_statement(statement())))

    assert "reversed" not in text


def test_480_month_statement_has_many_pages_numbered_to_the_last():
    data = statement(principal="2500000.00", rate="12.00", months=480)

    started = time.perf_counter()
    pdf = render_statement(data)
    elapsed = time.perf_counter() - started

    pages = pages_text(pdf)
    assert len(pages) >= 5
    assert f"page {len(pages)} of {len(pages)}" in pages[-1]
    assert "page 1 of" in pages[0]
    assert elapsed < 1.0  # about 0.1 s on a laptop: ten times the headroom


def test_schedule_header_row_repeats_on_page_2():
    pages = pages_text(render_statement(statement(months=120)))

    assert "Due date" in pages[1]
    assert "Paid off on" in pages[1]


def test_statement_without_transactions():
    pages = pages_text(render_statement(statement(transactions=())))

    assert "No transactions yet." in pages[-1]


@pytest.mark.parametrize(
    ("note", "shown"),
    [
        ("<b>not bold</b> & <script>", "<b>not bold</b> & <script>"),
        ("unclosed <font color=red", "unclosed <font color=red"),
        ("entity &amp; stays literal", "entity &amp; stays literal"),
        ("Zoë paid €25 — thanks", "Zoë paid €25 — thanks"),
        ("日本語 ✓ \x00 control", "control"),  # outside the standard fonts: drawn as boxes, not an error
    ],
    ids=["markup", "unclosed-tag", "entity", "latin-1-and-euro", "cjk-and-control"],
)
def test_special_characters_in_a_note_are_shown_as_text(note, shown):
    fee = transaction(5, "fee", date(2024, 4, 10), "25.00", principal=ZERO, fee=Decimal("25.00"), note=note)

    text = "\n".join(pages_text(render_statement(statement(transactions=(fee,)))))

    assert shown in text


def test_a_very_long_note_is_cut_to_fit_the_page():
    essay = transaction(5, "fee", date(2024, 4, 10), "25.00", note="word " * 5000 + "\n" * 500)

    text = "\n".join(pages_text(render_statement(statement(transactions=(essay,)))))

    assert "word word" in text
    assert "\u2026" in text


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("1234567.89", "1,234,567.89"),
        ("0", "0.00"),
        ("999.5", "999.50"),
        ("-5000", "-5,000.00"),
        ("0.005", "0.01"),
    ],
    ids=["thousands", "zero", "two-decimals", "negative", "half-up"],
)
def test_money_has_two_decimals_and_thousands_separators(value, written):
    assert money(Decimal(value)) == written
