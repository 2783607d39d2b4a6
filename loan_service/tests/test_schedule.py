"""The money maths of API.md, without a database: the table, edge terms, and properties over random loans.

Only the rate tiers and limits the service is configured with come from its settings.
"""

import os
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy_financial as npf
import pytest
from django.conf import settings as service_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from loans.schedule import CENT, add_months, emi, parse_rate_tiers, rate_for, repayment

TIERS = [
    (Decimal("10000.00"), Decimal("8.45")),
    (Decimal("1000000.00"), Decimal("10.00")),
    (Decimal("2500000.00"), Decimal("12.00")),
]


@pytest.mark.parametrize(
    ("principal", "months", "rate", "expected_emi", "expected_amount"),
    [
        ("1000000.00", 60, "10.00", "21247.04", "1274822.84"),
        ("200000.00", 60, "8.45", "4098.49", "245909.22"),
        ("10000.00", 12, "8.45", "871.97", "10463.59"),
        ("2500000.00", 120, "12.00", "35867.74", "4304128.21"),
    ],
    ids=["1m-60", "200k-60", "10k-12", "2.5m-120"],
)
def test_api_md_table(principal, months, rate, expected_emi, expected_amount):
    cost = repayment(Decimal(principal), rate_for(Decimal(principal), TIERS), months)

    assert rate_for(Decimal(principal), TIERS) == Decimal(rate)
    assert cost.emi == Decimal(expected_emi)
    assert cost.amount == Decimal(expected_amount)
    assert cost.total_interest == Decimal(expected_amount) - Decimal(principal)


def test_zero_interest_divides_the_principal_and_the_last_month_takes_the_remainder():
    cost = repayment(Decimal("10000.00"), Decimal("0"), 3)

    assert cost.emi == Decimal("3333.33")
    assert [row.payment for row in cost.instalments] == [Decimal("3333.33"), Decimal("3333.33"), Decimal("3333.34")]
    assert cost.amount == Decimal("10000.00")
    assert cost.total_interest == Decimal("0.00")


def test_one_month_pays_principal_plus_one_month_of_interest():
    cost = repayment(Decimal("12000.00"), Decimal("12.00"), 1)

    assert cost.emi == Decimal("12120.00")
    assert cost.amount == Decimal("12120.00")
    assert cost.instalments[0].balance == Decimal("0.00")


def test_480_months_ends_at_zero():
    cost = repayment(Decimal("100000000.00"), Decimal("12.00"), 480)

    assert len(cost.instalments) == 480
    assert cost.instalments[-1].balance == Decimal("0.00")
    assert abs(cost.emi - Decimal(str(-npf.pmt(0.01, 480, 1e8)))) <= Decimal("0.01")


def test_due_dates_follow_calendar_months_from_the_start():
    cost = repayment(Decimal("10000.00"), Decimal("8.45"), 3, start=date(2026, 1, 31))

    assert [row.due_date for row in cost.instalments] == [date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]


def test_add_months_clamps_to_the_end_of_a_shorter_month():
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 22), 14) == date(2028, 1, 22)


def test_rate_tiers_bounds_are_inclusive():
    assert rate_for(Decimal("999999.99"), TIERS) == Decimal("8.45")
    assert rate_for(Decimal("1000000.00"), TIERS) == Decimal("10.00")
    assert rate_for(Decimal("2499999.99"), TIERS) == Decimal("10.00")
    assert rate_for(Decimal("2500000.00"), TIERS) == Decimal("12.00")


def test_emi_rejects_a_term_below_one_month():
    with pytest.raises(ValueError, match="months"):
        emi(Decimal("10000"), Decimal("8"), 0)


money = st.decimals(min_value=Decimal("10000.00"), max_value=Decimal("100000000.00"), places=2)
rates = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("36.00"), places=2)
terms = st.integers(min_value=1, max_value=480)


@settings(max_examples=150, deadline=None)
@given(principal=money, rate=rates, months=terms)
def test_schedule_properties(principal, rate, months):
    cost = repayment(principal, rate, months)
    rows = cost.instalments

    assert len(rows) == months
    assert sum(row.payment for row in rows) == cost.amount
    assert sum(row.principal for row in rows) == principal
    assert rows[-1].balance == Decimal("0.00")
    assert all(row.balance >= 0 for row in rows)
    assert cost.total_interest == cost.amount - principal
    expected = principal / months if rate == 0 else -npf.pmt(float(rate) / 1200, months, float(principal))
    assert abs(cost.emi - Decimal(str(expected))) <= Decimal("0.01")


def test_rate_tiers_parse_into_bound_and_rate_pairs():
    assert parse_rate_tiers(["10000.00:8.45", "1000000:10", "2500000.00:12.00"]) == TIERS


@pytest.mark.parametrize(
    ("pairs", "complaint"),
    [
        (["10000.00:8.455"], "more than two decimals"),
        (["10000.001:8.45"], "more than two decimals"),
        (["10000.00:8.45", "2500000.00:12.00", "1000000.00:10.00"], "ascending"),
        (["10000.00:8.45", "10000.00:10.00"], "ascending"),
        (["10000.00:-0.01"], "between 0 and 100"),
        (["10000.00:100.01"], "between 0 and 100"),
        (["-1.00:8.45"], "not be negative"),
        (["10000.00:NaN"], "is not a number"),
        (["10000.00:eight"], "is not a number"),
        (["10000.00"], '"bound:rate"'),
        (["10000.00:8.45:1"], '"bound:rate"'),
        ([], "at least one tier"),
    ],
    ids=[
        "rate-three-decimals",
        "bound-three-decimals",
        "bounds-out-of-order",
        "bound-repeated",
        "rate-negative",
        "rate-over-100",
        "bound-negative",
        "rate-nan",
        "rate-word",
        "no-colon",
        "two-colons",
        "empty",
    ],
)
def test_bad_rate_tiers_are_refused_with_a_clear_message(pairs, complaint):
    with pytest.raises(ValueError, match=re.escape(complaint)):
        parse_rate_tiers(pairs)


def test_a_bad_rate_policy_stops_the_settings_from_loading():
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "loan_service.settings", "LOAN_RATE_TIERS": "10000:8.455"}

    loaded = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert loaded.returncode != 0
    assert "ImproperlyConfigured: LOAN_RATE_TIERS" in loaded.stderr
    assert "more than two decimals" in loaded.stderr


@st.composite
def loans_in_a_configured_tier(draw) -> tuple[Decimal, Decimal, int]:
    """(principal, rate, months) a loan can have: a tier of the service's LOAN_RATE_TIERS, a principal
    within that tier and the API's limits (its edges drawn often), a term up to LOAN_MAX_MONTHS."""
    tiers = sorted(service_settings.LOAN_RATE_TIERS)
    lowest, highest = service_settings.LOAN_MIN_PRINCIPAL, service_settings.LOAN_MAX_PRINCIPAL
    ranges = []
    for index, (bound, _) in enumerate(tiers):
        low = lowest if index == 0 else max(bound, lowest)  # under the first bound: the first tier's rate
        high = min(tiers[index + 1][0] - CENT, highest) if index + 1 < len(tiers) else highest
        if low <= high:
            ranges.append((int(low * 100), int(high * 100)))
    low, high = draw(st.sampled_from(ranges))
    principal = Decimal(draw(st.sampled_from([low, high]) | st.integers(low, high))) / 100
    months = draw(st.just(service_settings.LOAN_MAX_MONTHS) | st.integers(1, service_settings.LOAN_MAX_MONTHS))
    return principal, rate_for(principal, tiers), months


@settings(max_examples=300, deadline=None)
@given(loan=loans_in_a_configured_tier())
def test_the_guard_cannot_trigger_with_the_configured_tiers(loan):
    # The guard in repayment() pays less than the EMI only if rounding repaid the loan before its
    # last month: with the configured tiers and the API's limits that never happens.
    principal, rate, months = loan

    cost = repayment(principal, rate, months)

    assert [row.payment for row in cost.instalments[:-1]] == [cost.emi] * (months - 1)
    assert cost.instalments[-1].payment > 0
    assert cost.instalments[-1].balance == Decimal("0.00")


def test_a_rate_far_above_the_tiers_repays_early_and_the_guard_keeps_the_balance_at_zero():
    cost = repayment(Decimal("10000.07"), Decimal("100.00"), 120)

    rows = cost.instalments
    assert rows[118].balance == Decimal("0.00")  # repaid in month 119 by the rounding of the EMI
    assert rows[119].payment == Decimal("0.00")
    assert all(row.balance >= 0 for row in rows)
    assert sum(row.principal for row in rows) == Decimal("10000.07")
    assert cost.amount == sum(row.payment for row in rows)
