"""A disbursed loan's instalments and balances as a pure function of its transactions. No Django.

`replay(terms, movements)` starts from the schedule fixed at disbursement (schedule.py) and
applies every transaction that was not reversed, in value-date order (then in the order they
were recorded). Whatever was posted, backdated or reversed, the same transactions always give
the same state, so the stored balances are this function's result and nothing else.

A repayment is allocated as Fineract's default strategy does:
1. every instalment due by the payment's date, oldest first; within one, fee, then interest,
   then principal;
2. if what is left settles the loan (see `settlement_rest`: the principal not yet due plus the
   current period's interest pro rata by days), the loan is paid off with that interest rebate;
3. otherwise the next instalment still owed is paid in advance (an early payment of the
   regular instalment is not a prepayment, so it does not leave that instalment due);
4. what is left after that prepays principal: it is recorded on that instalment, and the later
   instalments are recomputed with the same EMI and a shorter term (the last one pays what is left).
More than the settlement is an overpayment: the service refuses it, and a replay in which one
arises (a fee reversed after the loan was paid off) records it in `overpaid`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from loans.schedule import ZERO, monthly_rate, repayment, to_cents

DISBURSEMENT = "disbursement"
REPAYMENT = "repayment"
FEE = "fee"
REVERSAL = "reversal"
WRITE_OFF = "write_off"
KINDS = (DISBURSEMENT, REPAYMENT, FEE, REVERSAL, WRITE_OFF)
REVERSIBLE = (REPAYMENT, FEE)


@dataclass(frozen=True)
class Terms:
    """What the schedule is built from: the loan's principal, rate, term and disbursement date."""

    principal: Decimal
    annual_rate: Decimal
    months: int
    emi: Decimal
    disbursed_on: date


@dataclass(frozen=True)
class Movement:
    """One transaction as the ledger sees it; `instalment` is the instalment a fee is charged on."""

    id: int
    kind: str
    amount: Decimal
    on: date
    instalment: int | None = None
    reversed: bool = False


@dataclass(frozen=True)
class Allocation:
    """How much of a transaction went to each part (for a fee: what it charged)."""

    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fee: Decimal = ZERO
    overpaid: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.overpaid

    def __add__(self, other: Allocation) -> Allocation:
        return Allocation(
            self.principal + other.principal,
            self.interest + other.interest,
            self.fee + other.fee,
            self.overpaid + other.overpaid,
        )


@dataclass
class Line:
    """One instalment: what is due and what is paid, by part."""

    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fee_due: Decimal = ZERO
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    fee_paid: Decimal = ZERO
    paid_off_on: date | None = None

    @property
    def fee_unpaid(self) -> Decimal:
        return self.fee_due - self.fee_paid

    @property
    def interest_unpaid(self) -> Decimal:
        return self.interest_due - self.interest_paid

    @property
    def principal_unpaid(self) -> Decimal:
        return self.principal_due - self.principal_paid

    @property
    def unpaid(self) -> Decimal:
        return self.fee_unpaid + self.interest_unpaid + self.principal_unpaid

    @property
    def due(self) -> Decimal:
        return self.principal_due + self.interest_due + self.fee_due

    def pay(self, amount: Decimal, on: date) -> tuple[Decimal, Allocation]:
        """Pay fee, then interest, then principal from `amount`; returns what is left and what went where."""
        fee = min(amount, self.fee_unpaid)
        interest = min(amount - fee, self.interest_unpaid)
        principal = min(amount - fee - interest, self.principal_unpaid)
        self.fee_paid += fee
        self.interest_paid += interest
        self.principal_paid += principal
        self.mark(on)
        return amount - fee - interest - principal, Allocation(principal, interest, fee)

    def mark(self, on: date) -> None:
        """Paid off on `on` once nothing is unpaid; unpaid again (a fee charged) clears the date."""
        if self.unpaid == ZERO:
            self.paid_off_on = self.paid_off_on or on
        else:
            self.paid_off_on = None


@dataclass(frozen=True)
class Arrears:
    """Where a loan stands on a day: how late, and what keeps it current."""

    days_past_due: int
    next_due_date: date | None
    next_due_amount: Decimal


@dataclass(frozen=True)
class Balance:
    """What a loan owes right after a movement: the outstanding parts and since when it is late.

    `unpaid_since` is the due date of the oldest instalment not fully paid (None once nothing is
    owed). Until the next movement nothing changes but the calendar, so on any day up to then the
    loan is `day - unpaid_since` days past due (0 if that is not positive): the reports read a past
    day's book from these rows alone.
    """

    principal: Decimal
    interest: Decimal
    fee: Decimal
    unpaid_since: date | None

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee

    def days_past_due(self, on: date) -> int:
        return max(0, (on - self.unpaid_since).days) if self.unpaid_since else 0


NOTHING_OWED = Balance(ZERO, ZERO, ZERO, None)


def balance_of(lines: Sequence[Line], *, written_off: bool = False) -> Balance:
    """The Balance of these instalments (nothing once written off)."""
    if written_off:
        return NOTHING_OWED
    unpaid = [line for line in lines if line.unpaid > ZERO]
    return Balance(
        principal=sum((line.principal_unpaid for line in lines), ZERO),
        interest=sum((line.interest_unpaid for line in lines), ZERO),
        fee=sum((line.fee_unpaid for line in lines), ZERO),
        unpaid_since=min((line.due_date for line in unpaid), default=None),
    )


@dataclass(frozen=True)
class LedgerState:
    """The result of a replay: the instalments, each transaction's allocation and the loan's balances."""

    terms: Terms
    lines: tuple[Line, ...]
    allocations: dict[int, Allocation] = field(default_factory=dict)
    closed_on: date | None = None
    written_off_on: date | None = None
    written_off: Allocation = Allocation()
    overpaid: Decimal = ZERO
    # The Balance before any movement (the schedule at disbursement) and right after each applied one.
    opening: Balance = NOTHING_OWED
    balances: dict[int, Balance] = field(default_factory=dict)

    @property
    def balance(self) -> Balance:
        """What the loan owes now."""
        return balance_of(self.lines, written_off=self.is_written_off)

    @property
    def is_written_off(self) -> bool:
        return self.written_off_on is not None

    def _outstanding(self, part: str) -> Decimal:
        if self.is_written_off:
            return ZERO
        return sum((getattr(line, f"{part}_unpaid") for line in self.lines), ZERO)

    @property
    def outstanding_principal(self) -> Decimal:
        return self._outstanding("principal")

    @property
    def outstanding_interest(self) -> Decimal:
        return self._outstanding("interest")

    @property
    def outstanding_fees(self) -> Decimal:
        return self._outstanding("fee")

    @property
    def total_outstanding(self) -> Decimal:
        return self.outstanding_principal + self.outstanding_interest + self.outstanding_fees

    @property
    def is_paid_off(self) -> bool:
        return not self.is_written_off and self.total_outstanding == ZERO

    def arrears(self, as_of: date) -> Arrears:
        """Days past due and the next payment, on `as_of` (nothing once paid off or written off)."""
        if self.is_written_off:
            return Arrears(0, None, ZERO)
        return arrears((line.due_date, line.unpaid) for line in self.lines if line.unpaid > ZERO)(as_of)

    def settlement(self, on: date) -> Allocation:
        """What closes the loan on `on`, by part: all principal and fees still owed, the interest of the
        instalments due by then and the current period's interest pro rata by days. A write-off on
        `on` writes off exactly this."""
        if self.is_written_off:
            return Allocation()
        interest = sum((line.interest_unpaid for line in self.lines if line.due_date <= on), ZERO)
        return Allocation(
            principal=sum((line.principal_unpaid for line in self.lines), ZERO),
            interest=interest + accrued_interest(self.lines, self.terms, on),
            fee=sum((line.fee_unpaid for line in self.lines), ZERO),
        )

    def payoff(self, on: date) -> Decimal:
        """The amount that closes the loan on `on` (see `settlement`)."""
        return self.settlement(on).total


def arrears(unpaid: Iterable[tuple[date, Decimal]]):
    """From (due date, unpaid amount) pairs of the unpaid instalments, a function of the day giving Arrears.

    days past due: days since the oldest unpaid instalment fell due (0 when none is late).
    next due: the first unpaid instalment due on or after the day, and what to pay by then to be
    current (it plus everything overdue); past the last due date, the last one and everything unpaid.
    The daily job computes the same figures from the stored rows with this function.
    """
    rows = sorted(unpaid)

    def on(as_of: date) -> Arrears:
        if not rows:
            return Arrears(0, None, ZERO)
        late = max(0, (as_of - rows[0][0]).days)
        upcoming = next((due for due, _ in rows if due >= as_of), rows[-1][0])
        amount = sum((unpaid for due, unpaid in rows if due <= upcoming), ZERO)
        return Arrears(late, upcoming, amount)

    return on


def _period_start(lines: Sequence[Line], index: int, terms: Terms) -> date:
    return lines[index - 1].due_date if index > 0 else terms.disbursed_on


def _current_index(lines: Sequence[Line], on: date) -> int | None:
    """The instalment whose period contains `on` (the first one due after it), if any."""
    return next((index for index, line in enumerate(lines) if line.due_date > on), None)


def accrued_interest(lines: Sequence[Line], terms: Terms, on: date) -> Decimal:
    """The current period's interest earned by `on`, pro rata by days, less what is already paid of it."""
    index = _current_index(lines, on)
    if index is None:
        return ZERO
    line = lines[index]
    start = _period_start(lines, index, terms)
    elapsed, length = (on - start).days, (line.due_date - start).days
    earned = to_cents(line.interest_due * max(0, elapsed) / length) if length > 0 else line.interest_due
    return max(ZERO, earned - line.interest_paid)


def settlement_rest(lines: Sequence[Line], terms: Terms, on: date) -> Decimal:
    """What settles the loan on `on` once everything due by then is paid: principal (and any fee) not yet
    due, plus the current period's interest pro rata by days."""
    later = [line for line in lines if line.due_date > on]
    not_due = sum((line.principal_unpaid + line.fee_unpaid for line in later), ZERO)
    return not_due + accrued_interest(lines, terms, on)


def _settle(lines: list[Line], terms: Terms, on: date) -> Allocation:
    """Pay off every instalment not yet due: principal in full, interest only as accrued by `on`."""
    accrued = accrued_interest(lines, terms, on)
    index = _current_index(lines, on)
    total = Allocation()
    if index is None:  # every instalment is due already: nothing left to settle
        return total
    for position in range(index, len(lines)):
        line = lines[position]
        line.interest_due = line.interest_paid + (accrued if position == index else ZERO)
        _, part = line.pay(line.unpaid, on)
        total += part
    return total


def _reamortise(lines: list[Line], after: int, prepaid: Decimal, terms: Terms) -> None:
    """Record `prepaid` principal on instalment `after` and recompute the later ones with the same EMI.

    The term shortens: instalments no longer needed are dropped, the last one pays what is left.
    """
    current = lines[after]
    current.principal_due += prepaid
    current.principal_paid += prepaid
    later = lines[after + 1 :]
    balance = sum((line.principal_unpaid for line in later), ZERO) - prepaid
    rate = monthly_rate(terms.annual_rate)
    kept = []
    for position, line in enumerate(later):
        if balance <= ZERO:
            break
        interest = to_cents(balance * rate)
        is_last = position == len(later) - 1 or balance + interest <= terms.emi
        principal = balance if is_last else max(ZERO, min(terms.emi - interest, balance))
        kept.append(replace(line, principal_due=principal, interest_due=interest))
        balance -= principal
    lines[after + 1 :] = kept
    dropped = later[len(kept) :]
    if dropped:  # a fee charged on a dropped instalment stays owed (or paid) on the new last one
        last = kept[-1] if kept else current
        last.fee_due += sum((line.fee_due for line in dropped), ZERO)
        last.fee_paid += sum((line.fee_paid for line in dropped), ZERO)
        last.paid_off_on = last.paid_off_on if last.unpaid == ZERO else None


def _repay(lines: list[Line], terms: Terms, amount: Decimal, on: date) -> Allocation:
    rest, total = amount, Allocation()
    for line in lines:
        if line.due_date > on or rest == ZERO:
            break
        rest, part = line.pay(rest, on)
        total += part
    if rest == ZERO:
        return total
    settlement = settlement_rest(lines, terms, on)
    if rest >= settlement:
        return total + _settle(lines, terms, on) + Allocation(overpaid=rest - settlement)
    # The next instalment still owed, paid in advance (an instalment paid ahead of the current one too).
    index = next(index for index, line in enumerate(lines) if line.due_date > on and line.unpaid > ZERO)
    rest, part = lines[index].pay(rest, on)
    total += part
    for line in lines[index + 1 :]:  # fees charged on instalments not yet due come before prepaid principal
        fee = min(rest, line.fee_unpaid)
        line.fee_paid += fee
        line.mark(on)
        rest -= fee
        total += Allocation(fee=fee)
    if rest > ZERO:
        _reamortise(lines, index, rest, terms)
        total += Allocation(principal=rest)
    return total


def schedule_lines(terms: Terms) -> list[Line]:
    """The instalments fixed at disbursement: instalment k due k calendar months after the disbursement date."""
    plan = repayment(terms.principal, terms.annual_rate, terms.months, start=terms.disbursed_on)
    return [Line(row.month, row.due_date, row.principal, row.interest) for row in plan.instalments]


def effective(movements: Iterable[Movement]) -> list[Movement]:
    """The movements a replay applies, in order: not reversed, not a disbursement or a reversal record."""
    applied = [m for m in movements if not m.reversed and m.kind in (REPAYMENT, FEE, WRITE_OFF)]
    return sorted(applied, key=lambda movement: (movement.on, movement.id))


def replay(terms: Terms, movements: Iterable[Movement]) -> LedgerState:
    """The loan's state after its transactions; the same transactions always give the same state."""
    lines = schedule_lines(terms)
    opening = balance_of(lines)
    allocations: dict[int, Allocation] = {}
    balances: dict[int, Balance] = {}
    closed_on = written_off_on = None
    written_off = Allocation()
    overpaid = ZERO
    for movement in effective(movements):
        if written_off_on is not None:
            raise ValueError(f"transaction {movement.id} comes after the write-off")
        if movement.kind == FEE:
            # A backdated prepayment can shorten the term below the instalment a fee was charged on:
            # the fee then stays owed on the last instalment.
            line = next((line for line in lines if line.number == movement.instalment), lines[-1])
            line.fee_due += movement.amount
            line.mark(movement.on)
            allocations[movement.id] = Allocation(fee=movement.amount)
        elif movement.kind == REPAYMENT:
            allocation = _repay(lines, terms, movement.amount, movement.on)
            allocations[movement.id] = allocation
            overpaid += allocation.overpaid
        else:
            written_off = LedgerState(terms, tuple(lines)).settlement(movement.on)
            written_off_on = movement.on
            allocations[movement.id] = written_off
        balances[movement.id] = balance_of(lines, written_off=written_off_on is not None)
        unpaid = balances[movement.id].unpaid_since is not None
        closed_on = None if unpaid or written_off_on else (closed_on or movement.on)
    return LedgerState(
        terms=terms,
        lines=tuple(lines),
        allocations=allocations,
        closed_on=closed_on,
        written_off_on=written_off_on,
        written_off=written_off,
        overpaid=overpaid,
        opening=opening,
        balances=balances,
    )


def state_on(terms: Terms, movements: Iterable[Movement], on: date) -> LedgerState:
    """The state as it was at the end of `on`: only the movements dated on or before it."""
    return replay(terms, [movement for movement in movements if movement.on <= on])
