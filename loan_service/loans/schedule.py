"""EMI, repayment schedule and rate policy: pure `Decimal` arithmetic, no Django.

The rules are API.md's: EMI is the equal monthly instalment on the reducing
balance, rounded half-up to cents; each month's interest is the balance times
the monthly rate, rounded; the last month pays what is left, so the balance
ends at exactly 0.00; `amount` is the sum of the payments.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from itertools import pairwise

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_cents(value: Decimal) -> Decimal:
    """Round half-up to two decimals, once."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def monthly_rate(annual_percent: Decimal) -> Decimal:
    """The monthly rate as a fraction: 12 % a year is 0.01 a month."""
    return Decimal(annual_percent) / 1200


def emi(principal: Decimal, annual_percent: Decimal, months: int) -> Decimal:
    """The equal monthly instalment: P·r·(1+r)^n / ((1+r)^n - 1), or P/n without interest."""
    if months < 1:
        raise ValueError("months must be at least 1")
    principal = Decimal(principal)
    with localcontext() as context:
        context.prec = 50  # (1+r)^480 needs the headroom; the result is rounded once at the end
        rate = monthly_rate(annual_percent)
        if rate == 0:
            return to_cents(principal / months)
        growth = (1 + rate) ** months
        return to_cents(principal * rate * growth / (growth - 1))


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Instalment:
    month: int
    due_date: date | None
    payment: Decimal
    principal: Decimal
    interest: Decimal
    balance: Decimal


@dataclass(frozen=True)
class Repayment:
    """What a loan costs: the instalment, the totals and every month."""

    emi: Decimal
    amount: Decimal
    total_interest: Decimal
    instalments: tuple[Instalment, ...]


def repayment(principal: Decimal, annual_percent: Decimal, months: int, *, start: date | None = None) -> Repayment:
    """The full schedule; due dates are filled in when the loan has a start date."""
    principal = to_cents(Decimal(principal))
    instalment = emi(principal, annual_percent, months)
    rate = monthly_rate(annual_percent)
    balance = principal
    rows = []
    for month in range(1, months + 1):
        interest = to_cents(balance * rate)
        # The last month pays what is left (API.md). The min() is a guard API.md does not
        # state: rounding (EMI and each month's interest, at most 0.01 a month, compounding)
        # could in principle repay the balance before the last month. Within the API limits
        # and the configured tiers it does not: every month before the last pays exactly the
        # EMI (tests/test_schedule.py, test_the_guard_cannot_trigger_with_the_configured_tiers,
        # builds schedules over each tier and term). A much higher operator
        # rate can (10,000.07 at 100 % over 120 months repays in month 119): then that month
        # pays what is owed and the rest pay 0.00, rather than the balance going negative.
        principal_part = balance if month == months else min(instalment - interest, balance)
        payment = principal_part + interest
        balance -= principal_part
        due = add_months(start, month) if start else None
        rows.append(Instalment(month, due, payment, principal_part, interest, balance))
    amount = sum((row.payment for row in rows), ZERO)
    return Repayment(emi=instalment, amount=amount, total_interest=amount - principal, instalments=tuple(rows))


def rate_for(principal: Decimal, tiers: Sequence[tuple[Decimal, Decimal]]) -> Decimal:
    """The annual rate of the highest tier whose lower bound `principal` reaches.

    `tiers` are (lower bound, rate) pairs; a principal under the first bound
    gets the first tier's rate (the minimum principal is checked elsewhere).
    """
    ordered = sorted(tiers)
    rate = ordered[0][1]
    for bound, tier_rate in ordered:
        if principal >= bound:
            rate = tier_rate
    return Decimal(rate)


def parse_rate_tiers(pairs: Sequence[str]) -> list[tuple[Decimal, Decimal]]:
    """The rate policy from "bound:rate" pairs ("10000.00:8.45"); ValueError says which pair is wrong and why.

    Bounds must ascend (each tier starts above the last), and every value fits the
    two decimals it is stored with; a rate is a percentage from 0 to 100.
    """
    if not pairs:
        raise ValueError("needs at least one tier")
    tiers = [_tier(pair) for pair in pairs]
    for (lower, _), (upper, _) in pairwise(tiers):
        if upper <= lower:
            raise ValueError(f"bounds must be strictly ascending: {upper} comes after {lower}")
    return tiers


def _tier(pair: str) -> tuple[Decimal, Decimal]:
    parts = pair.split(":")
    if len(parts) != 2:
        raise ValueError(f'{pair!r} is not a "bound:rate" pair, e.g. "10000.00:8.45"')
    bound, rate = (_cents(part.strip(), pair) for part in parts)
    if bound < 0:
        raise ValueError(f"{pair!r}: the bound must not be negative")
    if not 0 <= rate <= 100:
        raise ValueError(f"{pair!r}: the rate must be between 0 and 100 (percent a year)")
    return bound, rate


def _cents(text: str, pair: str) -> Decimal:
    try:
        value = Decimal(text)
        cents = value.quantize(CENT) if value.is_finite() else None
    except ArithmeticError:  # not a number, or too many digits to hold in cents
        cents = None
    if cents is None:
        raise ValueError(f"{pair!r}: {text!r} is not a number of at most 26 digits")
    if value != cents:
        raise ValueError(f"{pair!r}: {text!r} has more than two decimals")
    return cents
