"""The ledger (loans.ledger) without a database: worked examples, then properties over random loans and histories.

A random history is one the service would accept: a repayment is capped to the payoff of its day (or dropped
when, backdated, it would overpay), a fee is charged only on an instalment already past due, some repayments
and fees are reversed afterwards, and a write-off, if any, comes last.
"""

from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from loans.ledger import (
    FEE,
    REPAYMENT,
    REVERSAL,
    WRITE_OFF,
    Allocation,
    LedgerState,
    Movement,
    Terms,
    effective,
    replay,
    schedule_lines,
    state_on,
)
from loans.schedule import CENT, ZERO, emi, repayment, to_cents

RATES = [Decimal("8.45"), Decimal("10.00"), Decimal("12.00"), Decimal("0.00")]  # the tiers, and an interest-free loan
# Moderate counts keep the file to a few seconds; each random history replays the ledger once per movement.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(PROPERTY, max_examples=100)


def loan(principal: str, rate: str, months: int, disbursed_on: date) -> Terms:
    return Terms(
        Decimal(principal), Decimal(rate), months, emi(Decimal(principal), Decimal(rate), months), disbursed_on
    )


def repay(movement_id: int, amount: Decimal | str, on: date) -> Movement:
    return Movement(movement_id, REPAYMENT, Decimal(amount), on)


def fee(movement_id: int, amount: Decimal | str, on: date, instalment: int) -> Movement:
    return Movement(movement_id, FEE, Decimal(amount), on, instalment)


def on_time(terms: Terms, count: int) -> list[Movement]:
    """The first `count` scheduled instalments, each paid in full on its due date (movement id = instalment)."""
    lines = schedule_lines(terms)[:count]
    return [repay(line.number, line.principal_due + line.interest_due, line.due_date) for line in lines]


# ----------------------------------------------------------------------------- worked examples

TEN_THOUSAND = loan("10000.00", "8.45", 12, date(2026, 1, 31))


def test_the_schedule_of_ten_thousand_at_8_45_over_a_year_from_the_31st():
    lines = schedule_lines(TEN_THOUSAND)

    assert TEN_THOUSAND.emi == Decimal("871.97")
    assert [line.due_date for line in lines[:4]] == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
    ]
    assert (lines[0].principal_due, lines[0].interest_due) == (Decimal("801.55"), Decimal("70.42"))
    assert (lines[-1].due_date, lines[-1].principal_due + lines[-1].interest_due) == (
        date(2027, 1, 31),
        Decimal("871.92"),
    )
    assert sum(line.principal_due + line.interest_due for line in lines) == Decimal("10463.59")


def test_the_payoff_mid_period_charges_interest_by_days():
    # 14 of the 28 days of February: half of instalment 1's 70.42
    assert replay(TEN_THOUSAND, []).payoff(date(2026, 2, 14)) == Decimal("10035.21")
    assert replay(TEN_THOUSAND, []).payoff(date(2026, 2, 28)) == Decimal("10070.42")


def test_a_prepayment_of_2000_on_the_first_due_date_takes_two_months_off():
    state = replay(TEN_THOUSAND, [repay(1, "3743.94", date(2026, 2, 28))])  # 2 x 871.97 + 2,000.00

    assert state.allocations[1] == Allocation(principal=Decimal("3608.75"), interest=Decimal("135.19"))
    assert (state.lines[1].principal_due, state.lines[1].paid_off_on) == (Decimal("2807.20"), date(2026, 2, 28))
    assert (state.lines[2].principal_due, state.lines[2].interest_due) == (Decimal("826.96"), Decimal("45.01"))
    assert len(state.lines) == 10
    assert (state.lines[-1].principal_due, state.lines[-1].interest_due) == (Decimal("478.77"), Decimal("3.37"))


def test_ten_days_late_with_nothing_paid():
    arrears = replay(TEN_THOUSAND, []).arrears(date(2026, 3, 10))

    assert (arrears.days_past_due, arrears.next_due_date, arrears.next_due_amount) == (
        10,
        date(2026, 3, 31),
        Decimal("1743.94"),
    )


def test_a_late_fee_is_paid_before_the_instalment_it_is_charged_on():
    state = replay(TEN_THOUSAND, [fee(1, "25.00", date(2026, 3, 10), 1), repay(2, "896.97", date(2026, 3, 12))])

    assert state.allocations[2] == Allocation(
        principal=Decimal("801.55"), interest=Decimal("70.42"), fee=Decimal("25.00")
    )
    assert state.lines[0].paid_off_on == date(2026, 3, 12)


def test_a_write_off_takes_the_principal_the_interest_due_and_the_interest_accrued():
    state = replay(TEN_THOUSAND, [Movement(1, WRITE_OFF, ZERO, date(2026, 3, 10))])

    # 70.42 due on 28 Feb, and 10 of March's 31 days of 64.77
    assert state.written_off == Allocation(principal=Decimal("10000.00"), interest=Decimal("91.31"))
    assert (state.total_outstanding, state.arrears(date(2026, 4, 1)).days_past_due) == (ZERO, 0)


def test_paying_the_last_instalment_early_is_more_than_the_payoff():
    # Rule 2: the early settlement rebates the interest not yet earned, so the scheduled amount overpays
    # (and the service refuses it); the customer pays payoff(day) instead.
    terms = loan("10000.00", "8.45", 1, date(2026, 1, 31))
    state = replay(terms, [repay(1, "10070.42", date(2026, 2, 25))])

    assert (state.closed_on, state.overpaid) == (date(2026, 2, 25), Decimal("7.54"))  # 3 of 28 days of 70.42


# ----------------------------------------------------------------------------- strategies


def cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda n: Decimal(n).scaleb(-2))


def _pick(draw, low: int, high: int) -> int:
    return draw(st.integers(low, high))  # st.integers is cached: cheaper than building strategies per draw


def _money(draw, low: int, high: int) -> Decimal:
    return Decimal(_pick(draw, low, high)).scaleb(-2)


@st.composite
def days_in_2020s(draw) -> date:
    year, month = _pick(draw, 2020, 2030), _pick(draw, 1, 12)
    day = _pick(draw, 1, 28) if _pick(draw, 0, 1) == 0 else _pick(draw, 29, 31)  # half at the end of a month
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


@st.composite
def loan_terms(draw, min_months: int = 1) -> Terms:
    principal = _money(draw, 1_000_000, 10_000_000 if _pick(draw, 0, 1) == 0 else 500_000_000)
    rate = RATES[_pick(draw, 0, len(RATES) - 1)]
    long_term = _pick(draw, 0, 9) == 9
    months = _pick(draw, 61, 120) if long_term else _pick(draw, min_months, 60)
    return Terms(principal, rate, months, emi(principal, rate, months), draw(days_in_2020s()))


def _some_day(draw, terms: Terms, due: list[date], latest: date) -> date:
    """An exact due date, a day soon after the latest movement, or any day up to a bit past the end."""
    way = _pick(draw, 0, 2)
    if way == 0:
        return due[_pick(draw, 0, len(due) - 1)]
    if way == 1:
        return latest + timedelta(days=_pick(draw, 0, 40))
    return terms.disbursed_on + timedelta(days=_pick(draw, 0, (due[-1] - terms.disbursed_on).days + 45))


def _repayment(draw, terms: Terms, state: LedgerState, accepted: list[Movement], movement_id: int, on: date):
    way = _pick(draw, 0, 2)
    amount = (terms.emi, _money(draw, 1, int(terms.emi * 300)) if way == 1 else ZERO, terms.principal * 2)[way]
    if all(movement.on <= on for movement in accepted):  # not backdated: `state` is state_on(on)
        amount = min(amount, state.payoff(on))
    return repay(movement_id, amount, on) if amount > ZERO else None


def _fee(draw, terms: Terms, state: LedgerState, accepted: list[Movement], movement_id: int, on: date):
    past_due = [line.number for line in state_on(terms, accepted, on).lines if line.due_date < on]
    if not past_due:
        return None
    return fee(movement_id, _money(draw, 100, 50_000), on, past_due[_pick(draw, 0, len(past_due) - 1)])


def _history(draw, terms: Terms, write_off: bool) -> list[Movement]:
    due = [line.due_date for line in schedule_lines(terms)]
    accepted: list[Movement] = []
    state, latest = replay(terms, []), terms.disbursed_on
    for movement_id in range(1, _pick(draw, 0, 10) + 1):
        on = _some_day(draw, terms, due, latest)
        make = _fee if _pick(draw, 0, 3) == 3 else _repayment
        movement = make(draw, terms, state, accepted, movement_id, on)
        if movement is None:
            continue
        candidate = replay(terms, [*accepted, movement])
        if candidate.overpaid > state.overpaid:  # refused by the service
            continue
        accepted.append(movement)
        state, latest = candidate, max(latest, on)
    movements, next_id = list(accepted), max((movement.id for movement in accepted), default=0) + 1
    for index, movement in enumerate(accepted):
        if _pick(draw, 0, 5) == 5:  # reversed later, with its reversal record
            movements[index] = replace(movement, reversed=True)
            movements.append(Movement(next_id, REVERSAL, movement.amount, latest))
            next_id += 1
    if write_off and _pick(draw, 0, 4) == 4:
        on = latest + timedelta(days=_pick(draw, 0, 60))
        owed = replay(terms, movements).payoff(on)
        if owed > ZERO:
            movements.append(Movement(next_id, WRITE_OFF, owed, on))
    return movements


@st.composite
def loans(draw, write_off: bool = True) -> tuple[Terms, list[Movement]]:
    """Random terms and a random history the service would have accepted (see the module docstring)."""
    terms = draw(loan_terms())
    return terms, _history(draw, terms, write_off)


def parts(line) -> list[tuple[Decimal, Decimal]]:
    return [
        (line.principal_paid, line.principal_due),
        (line.interest_paid, line.interest_due),
        (line.fee_paid, line.fee_due),
    ]


def expected_accrued(state: LedgerState, on: date) -> Decimal:
    """The interest of the period containing `on`, pro rata by days, less what is paid of it already."""
    due = [line for line in state.lines if line.due_date <= on]
    later = [line for line in state.lines if line.due_date > on]
    if not later:
        return ZERO
    start, current = (due[-1].due_date if due else state.terms.disbursed_on), later[0]
    earned = to_cents(current.interest_due * max(0, (on - start).days) / (current.due_date - start).days)
    return max(ZERO, earned - current.interest_paid)


def expected_payoff(state: LedgerState, on: date) -> Decimal:
    """Everything due by `on`, the principal (and fees) not yet due, and the current period's interest by days."""
    due_by_then = sum((line.unpaid for line in state.lines if line.due_date <= on), ZERO)
    not_due = sum((line.principal_unpaid + line.fee_unpaid for line in state.lines if line.due_date > on), ZERO)
    return due_by_then + not_due + expected_accrued(state, on)


# ----------------------------------------------------------------------------- properties of any history


@PROPERTY
@given(loans())
def test_every_repayment_is_allocated_to_the_cent_and_a_fee_charges_its_amount(loan_and_history):
    terms, movements = loan_and_history
    state = replay(terms, movements)

    for movement in effective(movements):
        allocation = state.allocations[movement.id]
        if movement.kind == REPAYMENT:
            assert allocation.total == movement.amount
            assert min(allocation.principal, allocation.interest, allocation.fee, allocation.overpaid) >= ZERO
        elif movement.kind == FEE:
            assert allocation == Allocation(fee=movement.amount)
    assert not {movement.id for movement in movements if movement.reversed} & state.allocations.keys()


@PROPERTY
@given(loans())
def test_no_part_of_an_instalment_is_paid_twice_or_over(loan_and_history):
    terms, movements = loan_and_history
    state = replay(terms, movements)

    for line in state.lines:
        assert all(ZERO <= paid <= due for paid, due in parts(line)), line
        assert (line.paid_off_on is not None) == (line.unpaid == ZERO), line


@PROPERTY
@given(loans())
def test_principal_due_sums_to_the_loan_and_principal_paid_to_what_repayments_allocated(loan_and_history):
    terms, movements = loan_and_history
    state = replay(terms, movements)
    repayments = [movement for movement in effective(movements) if movement.kind == REPAYMENT]

    assert sum(line.principal_due for line in state.lines) == terms.principal
    assert sum(line.principal_paid for line in state.lines) == sum(
        (state.allocations[movement.id].principal for movement in repayments), ZERO
    )


@PROPERTY
@given(loans())
def test_outstanding_is_never_negative_and_is_the_sum_of_its_parts(loan_and_history):
    terms, movements = loan_and_history
    state = replay(terms, movements)
    balances = (state.outstanding_principal, state.outstanding_interest, state.outstanding_fees)

    assert min(balances) >= ZERO
    assert state.total_outstanding == sum(balances)
    assert state.is_paid_off == (state.closed_on is not None)


@PROPERTY
@given(loans(), st.randoms(use_true_random=False))
def test_the_same_movements_in_any_input_order_give_the_same_state(loan_and_history, shuffler):
    terms, movements = loan_and_history
    shuffled = list(movements)
    shuffler.shuffle(shuffled)

    assert replay(terms, movements) == replay(terms, movements)
    assert replay(terms, shuffled) == replay(terms, movements)


@PROPERTY
@given(loans(), st.data())
def test_a_reversed_and_reposted_repayment_changes_nothing(loan_and_history, data):
    terms, movements = loan_and_history
    applied = effective(movements)
    # The reposted repayment sorts after anything else on its day: pick one that already does.
    last_of_its_day = [
        movement
        for index, movement in enumerate(applied)
        if movement.kind == REPAYMENT and all(later.on > movement.on for later in applied[index + 1 :])
    ]
    assume(last_of_its_day)
    original = data.draw(st.sampled_from(last_of_its_day))
    new_id = max(movement.id for movement in movements) + 1
    reposted = [
        replace(movement, reversed=True) if movement.id == original.id else movement for movement in movements
    ] + [Movement(new_id, REVERSAL, original.amount, original.on), replace(original, id=new_id + 1)]

    before, after = replay(terms, movements), replay(terms, reposted)

    assert after.lines == before.lines
    assert after.allocations[new_id + 1] == before.allocations[original.id]
    assert (after.total_outstanding, after.closed_on, after.overpaid) == (
        before.total_outstanding,
        before.closed_on,
        before.overpaid,
    )


@PROPERTY
@given(loans(write_off=False), st.data())
def test_paying_the_payoff_closes_the_loan_and_a_cent_less_does_not(loan_and_history, data):
    terms, movements = loan_and_history
    state = replay(terms, movements)
    latest = max((movement.on for movement in movements), default=terms.disbursed_on)
    later_due = [line.due_date for line in state.lines if line.due_date >= latest]
    on = data.draw(
        st.one_of(st.integers(0, 70).map(lambda n: latest + timedelta(days=n)), st.sampled_from(later_due or [latest]))
    )
    payoff = state.payoff(on)
    assume(payoff > CENT)
    new_id = max((movement.id for movement in movements), default=0) + 1

    assert payoff == expected_payoff(state, on)
    closed = replay(terms, [*movements, repay(new_id, payoff, on)])
    assert (closed.closed_on, closed.total_outstanding, closed.overpaid) == (on, ZERO, state.overpaid)
    assert closed.allocations[new_id].overpaid == ZERO
    short = replay(terms, [*movements, repay(new_id, payoff - CENT, on)])
    assert short.closed_on is None
    assert short.total_outstanding > ZERO


@PROPERTY
@given(loans(), st.integers(0, 800))
def test_days_past_due_count_from_the_oldest_unpaid_due_date(loan_and_history, days):
    terms, movements = loan_and_history
    state = replay(terms, movements)
    on = terms.disbursed_on + timedelta(days=days)
    unpaid = [line.due_date for line in state.lines if line.unpaid > ZERO]

    expected = 0 if state.is_written_off or not unpaid else max(0, (on - min(unpaid)).days)
    assert state.arrears(on).days_past_due == expected


# ----------------------------------------------------------------------------- properties of a chosen history


@FEW
@given(loan_terms())
def test_paying_every_instalment_on_its_due_date_closes_the_loan_on_the_last_one(terms):
    plan = repayment(terms.principal, terms.annual_rate, terms.months, start=terms.disbursed_on)
    movements = on_time(terms, terms.months)
    state = replay(terms, movements)

    assert state.closed_on == plan.instalments[-1].due_date
    assert sum(movement.amount for movement in movements) == plan.amount
    assert (state.total_outstanding, state.overpaid) == (ZERO, ZERO)
    for line, row in zip(state.lines, plan.instalments, strict=True):
        assert (line.principal_paid, line.interest_paid, line.fee_paid) == (row.principal, row.interest, ZERO)
        assert line.paid_off_on == row.due_date


def _prepay_on_a_due_date(terms: Terms, data, least: Decimal) -> tuple[LedgerState, LedgerState, int]:
    """Instalments 1..k-1 paid on time, then on k's due date k, k+1 and at least `least` more, short of the payoff."""
    k = data.draw(st.integers(1, terms.months - 2), label="k")
    before = replay(terms, on_time(terms, k - 1))
    on = before.lines[k - 1].due_date
    regular = before.lines[k - 1].unpaid + before.lines[k].unpaid
    most = before.payoff(on) - regular - CENT  # any more settles the loan
    assume(most >= least)
    amount = regular + data.draw(cents(int(least * 100), int(most * 100)), label="prepaid")
    after = replay(terms, [*on_time(terms, k - 1), repay(k, amount, on)])
    assert after.allocations[k].overpaid == ZERO
    assert after.lines[k - 1].paid_off_on == after.lines[k].paid_off_on == on
    return before, after, k


@FEW
@given(loan_terms(min_months=3), st.data())
def test_a_prepayment_of_at_least_the_last_instalment_shortens_the_term_and_keeps_the_emi(terms, data):
    # Less cannot always drop an instalment: the schedule's last one absorbs the rounding, a few cents over the EMI.
    last_scheduled = schedule_lines(terms)[-1]
    least = max(terms.emi, last_scheduled.principal_due + last_scheduled.interest_due)

    before, after, k = _prepay_on_a_due_date(terms, data, least)

    assert len(after.lines) < len(before.lines)
    *full, last = after.lines[k + 1 :]
    assert all(line.principal_due + line.interest_due == terms.emi for line in full)
    assert ZERO < last.principal_due + last.interest_due <= terms.emi


@FEW
@given(loan_terms(min_months=3), st.data())
def test_any_prepayment_keeps_the_emi_and_the_last_instalment_within_it_or_the_scheduled_last(terms, data):
    before, after, k = _prepay_on_a_due_date(terms, data, CENT)

    *full, last = after.lines[k + 1 :]
    assert len(after.lines) <= len(before.lines)
    assert all(line.principal_due + line.interest_due == terms.emi for line in full)
    bound = terms.emi if len(after.lines) < len(before.lines) else before.lines[-1].due
    assert ZERO < last.principal_due + last.interest_due <= bound


@FEW
@given(loan_terms(min_months=2), st.data())
def test_an_instalment_paid_a_few_days_early_is_not_due_again_and_later_ones_do_not_change(terms, data):
    k = data.draw(st.integers(1, terms.months - 1), label="k")  # the last one early is a settlement, see above
    before = replay(terms, on_time(terms, k - 1))
    line = before.lines[k - 1]
    start = before.lines[k - 2].due_date if k > 1 else terms.disbursed_on
    on = line.due_date - timedelta(days=data.draw(st.integers(1, min(10, (line.due_date - start).days - 1))))

    after = replay(terms, [*on_time(terms, k - 1), repay(k, line.unpaid, on)])

    assert after.allocations[k] == Allocation(principal=line.principal_due, interest=line.interest_due)
    assert after.lines[k - 1].paid_off_on == on
    assert after.lines[k:] == before.lines[k:]
    arrears = after.arrears(line.due_date)
    assert (arrears.days_past_due, arrears.next_due_date) == (0, before.lines[k].due_date)


@FEW
@given(loan_terms(min_months=3), st.data())
def test_a_second_early_payment_pays_the_instalment_after_in_advance(terms, data):
    k = data.draw(st.integers(1, terms.months - 2), label="k")  # k+1 the last one early would settle the loan
    before = replay(terms, on_time(terms, k - 1))
    first, second = before.lines[k - 1], before.lines[k]
    start = before.lines[k - 2].due_date if k > 1 else terms.disbursed_on
    on = first.due_date - timedelta(days=data.draw(st.integers(2, min(10, (first.due_date - start).days - 1))))
    early = [repay(k, first.unpaid, on), repay(k + 1, second.unpaid, on + timedelta(days=1))]

    after = replay(terms, [*on_time(terms, k - 1), *early])

    assert after.allocations[k + 1] == Allocation(principal=second.principal_due, interest=second.interest_due)
    assert (after.lines[k - 1].paid_off_on, after.lines[k].paid_off_on) == (on, on + timedelta(days=1))
    assert after.lines[k + 1 :] == before.lines[k + 1 :]
    assert after.arrears(second.due_date).next_due_date == before.lines[k + 1].due_date


@FEW
@given(loan_terms())
def test_ten_days_after_an_unpaid_first_instalment_the_loan_is_ten_days_past_due(terms):
    state = replay(terms, [])
    first = state.lines[0].due_date

    assert state.arrears(first + timedelta(days=10)).days_past_due == 10
    assert state.arrears(first).days_past_due == 0


@FEW
@given(loan_terms(min_months=2), st.data())
def test_nothing_late_is_zero_days_past_due(terms, data):
    k = data.draw(st.integers(1, terms.months - 1), label="paid on time")
    state = replay(terms, on_time(terms, k))
    paid, upcoming = state.lines[k - 1].due_date, state.lines[k].due_date
    on = paid + timedelta(days=data.draw(st.integers(0, (upcoming - paid).days)))

    assert state.arrears(on).days_past_due == 0


@FEW
@given(loans(write_off=False), st.integers(0, 60))
def test_a_write_off_clears_the_loan_and_writes_off_what_was_owed(loan_and_history, days):
    terms, movements = loan_and_history
    before = replay(terms, movements)
    on = max((movement.on for movement in movements), default=terms.disbursed_on) + timedelta(days=days)
    assume(before.total_outstanding > ZERO)
    new_id = max((movement.id for movement in movements), default=0) + 1

    after = replay(terms, [*movements, Movement(new_id, WRITE_OFF, before.payoff(on), on)])

    interest_due = sum((line.interest_unpaid for line in before.lines if line.due_date <= on), ZERO)
    assert (
        after.written_off
        == after.allocations[new_id]
        == Allocation(
            principal=before.outstanding_principal,
            interest=interest_due + expected_accrued(before, on),
            fee=before.outstanding_fees,
        )
    )
    assert after.written_off.total == before.payoff(on)
    balances = (after.outstanding_principal, after.outstanding_interest, after.outstanding_fees, after.payoff(on))
    assert balances == (ZERO, ZERO, ZERO, ZERO)
    assert after.arrears(on + timedelta(days=30)).days_past_due == 0
    assert (after.written_off_on, after.closed_on) == (on, None)


@FEW
@given(loan_terms(min_months=2), st.data())
def test_a_fee_reopens_its_instalment_and_the_next_repayment_pays_the_fee_first(terms, data):
    k = data.draw(st.integers(1, terms.months - 1), label="paid on time")
    paid = on_time(terms, k)
    due = schedule_lines(terms)
    charged_on = due[k - 1].due_date + timedelta(days=data.draw(st.integers(1, 20)))
    amount = data.draw(cents(100, 50_000), label="fee")
    charged = [*paid, fee(k + 1, amount, charged_on, k)]

    reopened = replay(terms, charged)
    assert (reopened.lines[k - 1].unpaid, reopened.lines[k - 1].paid_off_on) == (amount, None)
    assert reopened.outstanding_fees == amount

    paid_on = charged_on + timedelta(days=data.draw(st.integers(0, 40)))
    extra = data.draw(cents(0, int(terms.emi * 100)), label="extra")
    settled = replay(terms, [*charged, repay(k + 2, amount + extra, paid_on)])
    assert settled.allocations[k + 2].fee == amount
    assert settled.lines[k - 1].paid_off_on == paid_on
    assert settled.outstanding_fees == ZERO


# ----------------------------------------------------------------------------- found by these tests


def test_a_fee_on_an_instalment_a_prepayment_drops_is_still_owed():
    movements = [fee(1, "25.00", date(2026, 2, 10), 12), repay(2, "5000.00", date(2026, 2, 28))]

    state = replay(TEN_THOUSAND, movements)

    assert len(state.lines) == 9  # instalments 10-12, and the fee on 12, are gone
    assert state.outstanding_fees + state.allocations[2].fee == Decimal("25.00")


def test_a_prepayment_never_pays_more_principal_than_the_loan():
    movements = [fee(1, "500.00", date(2026, 2, 10), 12), repay(2, "10470.42", date(2026, 2, 28))]  # payoff - 100

    state = replay(TEN_THOUSAND, movements)

    assert sum(line.principal_due for line in state.lines) == TEN_THOUSAND.principal
    assert state.total_outstanding > ZERO


def test_a_payoff_quote_holds_for_one_payment_and_is_quoted_again_after_a_partial_one():
    # A partial payment before the payoff pays the next instalment in advance, its whole interest
    # included (rule 3), so the rest of the first quote no longer settles; the new quote does.
    on = date(2026, 2, 14)
    assert replay(TEN_THOUSAND, []).payoff(on) == Decimal("10035.21")
    partly = replay(TEN_THOUSAND, [repay(1, "100.00", on)])
    assert partly.payoff(on) == Decimal("9970.42")  # 10,035.21 - 100.00 + the 35.21 of interest paid ahead

    state = replay(TEN_THOUSAND, [repay(1, "100.00", on), repay(2, str(partly.payoff(on)), on)])

    assert (state.closed_on, state.total_outstanding, state.overpaid) == (on, ZERO, ZERO)


@PROPERTY
@given(loans(), st.integers(0, 800))
def test_the_balance_after_the_last_movement_by_a_day_is_that_days_state(loan_and_history, days):
    """The reports read a past day's book from the balance stored after each movement: it must be
    exactly what a replay of the movements up to that day owes, and as late."""
    terms, movements = loan_and_history
    state = replay(terms, movements)
    day = terms.disbursed_on + timedelta(days=days)
    applied = [movement for movement in effective(movements) if movement.on <= day]
    balance = state.balances[applied[-1].id] if applied else state.opening
    then = state_on(terms, movements, day)

    assert (balance.principal, balance.interest, balance.fee) == (
        then.outstanding_principal,
        then.outstanding_interest,
        then.outstanding_fees,
    )
    assert balance.days_past_due(day) == then.arrears(day).days_past_due
    assert state.balance == (state.balances[effective(movements)[-1].id] if effective(movements) else state.opening)
