"""`manage.py seed_servicing --count N [--as-of YYYY-MM-DD]`: a book of N disbursed loans, fast, for benchmarks.

The book stands as at the start of `--as-of` (default today), as if the daily job had run every
day up to the day before: each loan was disbursed one to seven months earlier, most have paid
every instalment on its due date, some are one to three instalments behind, and the reminders,
overdue notices and late fees of the days before are recorded on the instalments (the fees also
as transactions). There are few shapes (terms, disbursement day, instalments paid): each is
replayed once with ledger.replay and its result copied to every loan of that shape, so the stored
balances are the replay's and nothing else. Rows go in with COPY (PostgreSQL only) and explicit
ids; the status counts are kept in the same transaction. Seeding publishes no events. A sample of
the loans is then checked against servicing.state_of, and the command fails if one differs.
"""

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from loans import ledger, schedule, services
from loans.models import Instalment, Loan, LoanStatusCount, LoanTransaction
from loans.schedule import ZERO
from loans.servicing import BALANCE_AFTER, INSTALMENT_MONEY, PORTIONS, state_of

PRINCIPALS = [Decimal(p) for p in ("10000.00", "25000.00", "60000.00", "150000.00", "400000.00", "1200000.00")]
TERMS = {6: 35, 9: 25, 12: 25, 18: 10, 24: 5}  # months: weight; about 10.4 instalments a loan
BEHIND = {0: 80, 1: 10, 2: 6, 3: 4}  # instalments missed (the latest ones due): weight
SEED_ADMIN_ID = 1
Kind = LoanTransaction.Kind
# Columns in table order (no db_column anywhere: a foreign key's column is its attname).
LOAN_COLUMNS = [field.attname for field in Loan._meta.concrete_fields]
# A transaction's ids first: the rest of its row is its shape's.
TRANSACTION_REST = [
    field.attname for field in LoanTransaction._meta.concrete_fields if field.attname not in ("id", "loan_id")
]
TRANSACTION_COLUMNS = ["id", "loan_id", *TRANSACTION_REST]
INSTALMENT_COLUMNS = [field.attname for field in Instalment._meta.concrete_fields if field.name != "id"]
DEFAULTS = {field.attname: field.get_default() for field in Loan._meta.concrete_fields}
BALANCES = ["outstanding_principal", "outstanding_interest", "outstanding_fees", "total_outstanding", "overpaid"]
ARREARS = ["days_past_due", "next_due_date", "next_due_amount"]


@dataclass(frozen=True)
class Shape:
    """What every loan of one shape shares: its balances, instalment rows and transaction rows (without ids)."""

    loan: dict
    instalments: tuple[tuple, ...]
    transactions: tuple[dict, ...]


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def _movements(lines: list[ledger.Line], paid: int, yesterday: date) -> list[ledger.Movement]:
    """The first `paid` instalments paid on their due dates; a late fee on each later one left unpaid past grace."""
    grace = timedelta(days=settings.LOAN_LATE_FEE_GRACE_DAYS)
    dated = [(line.due_date, Kind.REPAYMENT, line.principal_due + line.interest_due, None) for line in lines[:paid]]
    for line in lines[paid:]:
        if line.due_date + grace <= yesterday:
            fee = settings.LOAN_LATE_FEE.on(line.principal_due + line.interest_due)
            if fee > ZERO:
                dated.append((line.due_date + grace, Kind.FEE, fee, line.number))
    dated.sort(key=lambda movement: movement[0])
    return [
        ledger.Movement(local_id, kind, amount, on, number) for local_id, (on, kind, amount, number) in enumerate(dated)
    ]


def _bookkeeping(line: ledger.Line, paid_on_time: bool, yesterday: date) -> tuple:
    """The daily job's dates on an instalment, as its runs up to `yesterday` left them."""
    reminded = line.due_date - timedelta(days=settings.LOAN_REMINDER_DAYS_BEFORE)
    notified = line.due_date + timedelta(days=1)
    charged = line.due_date + timedelta(days=settings.LOAN_LATE_FEE_GRACE_DAYS)
    return (
        reminded if reminded <= yesterday else None,
        notified if not paid_on_time and notified <= yesterday else None,
        charged if not paid_on_time and charged <= yesterday else None,
    )


@cache
def shape_of(principal: Decimal, months: int, disbursed_on: date, paid: int, as_of: date) -> Shape:
    """The replayed state of a loan of these terms that paid its first `paid` instalments on time."""
    rate, cost = services.price_of(principal, months)
    terms = ledger.Terms(principal, rate, months, cost.emi, disbursed_on)
    yesterday = as_of - timedelta(days=1)
    movements = _movements(ledger.schedule_lines(terms), paid, yesterday)
    state = ledger.replay(terms, movements)
    arrears = state.arrears(yesterday)
    loan = {
        "interest": rate,
        "emi": cost.emi,
        "amount": cost.amount,
        "total_interest": cost.total_interest,
        **{name: getattr(state, name) for name in BALANCES},
        "unpaid_since": state.balance.unpaid_since,
        "days_past_due": arrears.days_past_due,
        "next_due_date": arrears.next_due_date,
        "next_due_amount": arrears.next_due_amount,
    }
    instalments = tuple(
        (line.number, *(getattr(line, name) for name in INSTALMENT_MONEY), *_bookkeeping(line, index < paid, yesterday))
        for index, line in enumerate(state.lines)
    )
    disbursement = ledger.Movement(-1, Kind.DISBURSEMENT, principal, disbursed_on)
    transactions = [_transaction(disbursement, ledger.Allocation(), state.opening)]
    transactions += [
        _transaction(movement, state.allocations[movement.id], state.balances[movement.id]) for movement in movements
    ]
    return Shape(loan, instalments, tuple(transactions))


def _transaction(movement: ledger.Movement, part: ledger.Allocation, after: ledger.Balance) -> tuple:
    note = f"Late fee on instalment {movement.instalment}." if movement.kind == Kind.FEE else ""
    values = {
        "kind": movement.kind,
        "amount": movement.amount,
        "on": movement.on,
        "instalment_number": movement.instalment,
        "note": note,
        "created_by": None if movement.kind == Kind.FEE else SEED_ADMIN_ID,  # fees: the daily job
        "created_at": _noon(movement.on),
        **dict(zip(PORTIONS, (part.principal, part.interest, part.fee, part.overpaid), strict=True)),
        **dict(zip(BALANCE_AFTER, (after.principal, after.interest, after.fee, after.unpaid_since), strict=True)),
    }
    return tuple(values.get(name) for name in TRANSACTION_REST)


def _due_before(disbursed_on: date, months: int, as_of: date) -> int:
    return sum(1 for number in range(1, months + 1) if schedule.add_months(disbursed_on, number) < as_of)


def _pick(rng: random.Random, weights: dict) -> int:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _terms(rng: random.Random, as_of: date) -> tuple[Decimal, int, date, int]:
    """A loan's principal, term, disbursement day and instalments paid: never all due, so never closed."""
    months = _pick(rng, TERMS)
    days_ago = rng.randint(35, min(months * 30 - 20, 215))
    disbursed_on = as_of - timedelta(days=days_ago)
    due = _due_before(disbursed_on, months, as_of)
    return rng.choice(PRINCIPALS), months, disbursed_on, due - min(due, _pick(rng, BEHIND))


class Command(BaseCommand):
    help = "Create N disbursed loans with their schedules and payments in bulk, as of a day (default today)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument("--as-of", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default today)")
        parser.add_argument("--customers", type=int, default=20_000, help="customer ids 1..N are used")
        parser.add_argument("--agents", type=int, default=50, help="agent ids 10001..10000+N are used")
        parser.add_argument("--batch-size", type=int, default=20_000)
        parser.add_argument("--check", type=int, default=300, help="loans checked against the replay after seeding")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, count, as_of, customers, agents, batch_size, check, seed, **options):
        if connection.vendor != "postgresql":
            raise CommandError("seed_servicing loads with COPY: it needs PostgreSQL")
        as_of = as_of or timezone.localdate()
        rng = random.Random(seed)  # noqa: S311 - repeatable demo data, not secrets
        made = 0
        while made < count:
            size = min(batch_size, count - made)
            self._insert([self._loan(rng, as_of, customers, agents) for _ in range(size)])
            made += size
        self.stdout.write(f"created {made} disbursed loans ({shape_of.cache_info().currsize} shapes)")
        services.rebuild_portfolio()  # the kept slices of the report, which COPY went around
        checked = check_sample(rng, check, as_of)
        self.stdout.write(f"checked {checked} loans against servicing.state_of: stored balances match")

    def _loan(self, rng: random.Random, as_of: date, customers: int, agents: int) -> tuple[dict, Shape]:
        principal, months, disbursed_on, paid = _terms(rng, as_of)
        shape = shape_of(principal, months, disbursed_on, paid, as_of)
        decided_at = _noon(disbursed_on - timedelta(days=rng.randint(1, 20)))
        created_at = decided_at - timedelta(minutes=rng.randrange(10, 60 * 24 * 3))
        values = {
            **DEFAULTS,
            **shape.loan,
            "customer_id": rng.randint(1, customers),
            "agent_id": 10_000 + rng.randint(1, agents),
            "principal": principal,
            "months": months,
            "status": Loan.Status.DISBURSED.value,
            "start_date": disbursed_on,
            "end_date": schedule.add_months(disbursed_on, months),
            "decided_by": SEED_ADMIN_ID,
            "decided_at": decided_at,
            "disbursed_on": disbursed_on,
            "disbursed_by": SEED_ADMIN_ID,
            "created_at": created_at,
            "updated_at": _noon(max(movement[TRANSACTION_REST.index("on")] for movement in shape.transactions)),
        }
        return values, shape

    def _insert(self, loans: list[tuple[dict, Shape]]) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            # Ids above the current maxima are this batch's only while no one else inserts.
            loan_id = _lock_and_max(cursor, Loan) + 1
            tx_id = _lock_and_max(cursor, LoanTransaction) + 1
            loan_rows, tx_rows, instalment_rows = _rows(loans, loan_id, tx_id)
            _copy(cursor, Loan, LOAN_COLUMNS, loan_rows)
            _copy(cursor, LoanTransaction, TRANSACTION_COLUMNS, tx_rows)
            _copy(cursor, Instalment, INSTALMENT_COLUMNS, instalment_rows)
            for model in (Loan, LoanTransaction):
                table = connection.ops.quote_name(model._meta.db_table)
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")  # noqa: S608
            services.count_status_changes({Loan.Status.DISBURSED: len(loan_rows)})


def _rows(loans: list[tuple[dict, Shape]], loan_id: int, tx_id: int) -> tuple[list, list, list]:
    """The COPY rows of loans, transactions and instalments, numbered from these first ids."""
    loan_rows, tx_rows, instalment_rows = [], [], []
    for values, shape in loans:
        values["id"] = loan_id
        loan_rows.append(tuple(values[name] for name in LOAN_COLUMNS))
        for rest in shape.transactions:
            tx_rows.append((tx_id, loan_id, *rest))
            tx_id += 1
        instalment_rows.extend((loan_id, *row) for row in shape.instalments)
        loan_id += 1
    return loan_rows, tx_rows, instalment_rows


def _lock_and_max(cursor, model) -> int:
    table = connection.ops.quote_name(model._meta.db_table)
    cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608 - our table
    return cursor.fetchone()[0]


def _copy(cursor, model, columns: list[str], rows: list[tuple]) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column) for column in columns)  # "on" is a keyword
    with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def check_sample(rng: random.Random, size: int, as_of: date) -> int:
    """Compare `size` random loans' stored rows with servicing.state_of; CommandError lists what differs."""
    ids = list(Loan.objects.filter(status=Loan.Status.DISBURSED).values_list("id", flat=True))
    sample = rng.sample(ids, min(size, len(ids)))
    problems = []
    for loan in Loan.objects.filter(id__in=sample).prefetch_related("transactions", "instalments"):
        problems += _differences(loan, as_of - timedelta(days=1))
    counted = dict(LoanStatusCount.objects.values_list("status", "count"))
    actual = Loan.objects.filter(status=Loan.Status.DISBURSED).count()
    if counted.get(Loan.Status.DISBURSED) != actual:
        problems.append(f"LoanStatusCount DISBURSED {counted.get(Loan.Status.DISBURSED)} != {actual} loans")
    if problems:
        raise CommandError("seeded rows differ from the replay:\n" + "\n".join(problems[:30]))
    return len(sample)


def _differences(loan: Loan, last_run: date) -> list[str]:
    transactions = list(loan.transactions.all())
    state = state_of(loan, transactions)
    arrears = state.arrears(last_run)
    expected = {name: getattr(state, name) for name in BALANCES} | {
        "days_past_due": arrears.days_past_due,
        "next_due_date": arrears.next_due_date,
        "next_due_amount": arrears.next_due_amount,
        "status": Loan.Status.CLOSED if state.closed_on else Loan.Status.DISBURSED,
    }
    problems = [
        f"loan {loan.id} {name}: stored {getattr(loan, name)!r}, replay {value!r}"
        for name, value in expected.items()
        if getattr(loan, name) != value
    ]
    rows = sorted(loan.instalments.all(), key=lambda row: row.number)
    stored = [(row.number, *(getattr(row, name) for name in INSTALMENT_MONEY)) for row in rows]
    replayed = [(line.number, *(getattr(line, name) for name in INSTALMENT_MONEY)) for line in state.lines]
    if stored != replayed:
        problems.append(f"loan {loan.id} instalments: stored {stored}, replay {replayed}")
    for tx in transactions:
        part = state.allocations.get(tx.id, ledger.Allocation())
        if tx.kind != Kind.DISBURSEMENT and tuple(getattr(tx, name) for name in PORTIONS) != (
            part.principal,
            part.interest,
            part.fee,
            part.overpaid,
        ):
            problems.append(f"loan {loan.id} transaction {tx.id}: allocation differs from the replay's {part}")
    return problems
