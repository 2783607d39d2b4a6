"""`manage.py seed_loans --count N`: many realistic loans, fast, for trying the system and for benchmarks.

Rows go in with COPY on PostgreSQL (executemany elsewhere); their history is written by
the database from the inserted rows ("created" as NEW by the agent, then "approved" or
"rejected" by the deciding admin), and the status counts are kept in the same transaction.
Seeding publishes no events: demo data must not notify anyone.
"""

import random
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from functools import cache

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from loans import schedule, services
from loans.models import LOAN_FIELDS, Loan

PRINCIPALS = [Decimal(p) for p in ("10000.00", "50000.00", "200000.00", "750000.00", "1000000.00", "3000000.00")]
TERMS = [6, 12, 24, 36, 60, 120, 240]
SEED_ADMIN_ID = 1
COLUMNS = [name for name in LOAN_FIELDS if name != "id"]  # the database numbers the rows
STATUS = COLUMNS.index("status")
# The servicing fields of a loan never disbursed: their model defaults (zero balances, no dates).
DEFAULTS = {field.name: field.get_default() for field in Loan._meta.concrete_fields}
# What a history row copies of the loan (Loan.history leaves some fields out), in table order.
COPIED = [name for name in LOAN_FIELDS if name in {field.name for field in Loan.history.model._meta.concrete_fields}]
# A "created" entry shows the loan as the agent made it: NEW and undecided.
AS_CREATED = {
    "status": "'NEW'",
    "start_date": "NULL",
    "end_date": "NULL",
    "decided_by": "NULL",
    "decided_at": "NULL",
    "decision_note": "''",
}
HISTORY_INSERT = (
    f"INSERT INTO {{history}} ({', '.join(COPIED)}, history_user_id, history_date, history_change_reason, history_type)"
)
CREATED_HISTORY = f"""
    {HISTORY_INSERT}
    SELECT {", ".join(AS_CREATED.get(name, name) for name in COPIED)}, agent_id, created_at, 'created', '+'
    FROM {{loans}} WHERE id > %s ORDER BY id
"""  # noqa: S608 - table names are ours, values are parameters
DECIDED_HISTORY = f"""
    {HISTORY_INSERT}
    SELECT {", ".join(COPIED)}, decided_by, decided_at, LOWER(status), '~'
    FROM {{loans}} WHERE id > %s AND status <> 'NEW' ORDER BY id
"""  # noqa: S608 - table names are ours, values are parameters


# Seeded terms are few: each one's price is computed once. Not services.quote: seeding does not
# check its terms against the lending limits, whatever the settings say.
_cost = cache(services.price_of)


class Command(BaseCommand):
    help = "Create N loans with their history in bulk; about 30 % approved and 15 % rejected."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument("--customers", type=int, default=500, help="customer ids 1..N are used")
        parser.add_argument("--agents", type=int, default=50, help="agent ids 10001..10000+N are used")
        parser.add_argument("--batch-size", type=int, default=20_000)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, count, customers, agents, batch_size, seed, **options):
        rng = random.Random(seed)  # noqa: S311 - repeatable demo data, not secrets
        now = timezone.now()
        made = 0
        while made < count:
            rows = [self._row(rng, now, customers, agents) for _ in range(min(batch_size, count - made))]
            self._insert(rows)
            made += len(rows)
        services.rebuild_portfolio()  # the kept slices of the report, which the bulk insert went around
        self.stdout.write(f"created {made} loans")

    def _row(self, rng: random.Random, now, customers: int, agents: int) -> tuple:
        principal, months = rng.choice(PRINCIPALS), rng.choice(TERMS)
        rate, cost = _cost(principal, months)
        created = now - timedelta(minutes=rng.randrange(1, 60 * 24 * 365))
        status, start, end, decided_by, decided_at, note = Loan.Status.NEW, None, None, None, None, ""
        outcome = rng.random()
        if outcome < 0.45:
            decided_by, decided_at = SEED_ADMIN_ID, created + timedelta(minutes=rng.randrange(1, 60 * 24))
            if outcome < 0.3:
                start = decided_at.date()
                status, end = Loan.Status.APPROVED, schedule.add_months(start, months)
            else:
                status, note = Loan.Status.REJECTED, "seeded"
        values = {
            "customer_id": rng.randint(1, customers),
            "agent_id": 10_000 + rng.randint(1, agents),
            "principal": principal,
            "interest": rate,
            "months": months,
            "emi": cost.emi,
            "amount": cost.amount,
            "total_interest": cost.total_interest,
            "status": status.value,
            "start_date": start,
            "end_date": end,
            "decided_by": decided_by,
            "decided_at": decided_at,
            "decision_note": note,
            "created_at": created,
            "updated_at": created,
        }
        return tuple(values[name] if name in values else DEFAULTS[name] for name in COLUMNS)

    def _insert(self, rows: list[tuple]) -> None:
        loans = connection.ops.quote_name(Loan._meta.db_table)
        history = connection.ops.quote_name(Loan.history.model._meta.db_table)
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Ids above the current maximum are this batch's only while no one else inserts.
                cursor.execute(f"LOCK TABLE {loans} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {loans}")  # noqa: S608 - our table
            before = cursor.fetchone()[0]
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {loans} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(COLUMNS))
                cursor.executemany(f"INSERT INTO {loans} ({', '.join(COLUMNS)}) VALUES ({marks})", rows)  # noqa: S608
            cursor.execute(CREATED_HISTORY.format(history=history, loans=loans), [before])
            cursor.execute(DECIDED_HISTORY.format(history=history, loans=loans), [before])
            services.count_status_changes(Counter(row[STATUS] for row in rows))
