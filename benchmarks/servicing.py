"""Servicing over 100,000 disbursed loans in PostgreSQL: repayments and payoff quotes through the real HTTP
stack (gunicorn, as manage_all runs it), and the daily job over the whole book.

    .venv/bin/python benchmarks/servicing.py [--loans 100000] [--requests 500]

Seeds a database of its own (lms_bench_servicing, dropped at the end) with `manage.py seed_servicing`:
about ten instalments a loan, most paid on time, some one to three behind, as if the daily job had
run every day up to yesterday (the command checks a sample of loans against servicing.state_of).
Starts loan_service under gunicorn on a free port and times, with one pooled keep-alive client,
GET /health (the baseline: the same stack without the work), then for each of `--requests` random
loans (each used once) the payoff quote GET /api/loan/{id}/payoff?date=today and a repayment POST
/api/loan/{id}/repayments of an instalment, half of one or two (never more than the quoted payoff),
each with a fresh Idempotency-Key. Then runs `manage.py run_daily --as-of today` twice: the first
charges the day's late fees, sends its overdue notices and reminders and moves the arrears; the
second must find nothing to do. Prints a table and exits 1 unless the repayment p95 is at most
30 ms, the first daily run takes at most 30 s, and the second charges no fee and creates no event.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
from stack import (
    SERVICE,
    WARM_UP,
    call,
    install_signal_handlers,
    load,
    percentiles,
    running_service,
    seeded_database,
    test_keys,
    timed,
)

DATABASE = "lms_bench_servicing"
ADMIN_ID = 1

TARGET_REPAYMENT_P95_MS = 30.0
TARGET_DAILY_SECONDS = 30.0
# The daily job's one-line summary (loans.daily.DailyRun.__str__).
SUMMARY = re.compile(
    r"(?P<loans>\d+) loans with work in (?P<batches>\d+) batches, (?P<fees>\d+) late fees \((?P<fee_amount>[\d.]+)\), "
    r"(?P<overdue>\d+) overdue notices, (?P<reminders>\d+) reminders, (?P<arrears>\d+) arrears updated, "
    r"(?P<replayed>\d+) replayed, (?P<seconds>[\d.]+) s"
)


def book(env: dict[str, str]) -> dict[str, int]:
    """The book's size: loans, instalment rows (and unpaid ones), transactions, outbox events, fees."""
    queries = {
        "loans": "SELECT COUNT(*) FROM loans_loan WHERE status = 'DISBURSED'",
        "instalments": "SELECT COUNT(*) FROM loans_instalment",
        "unpaid": "SELECT COUNT(*) FROM loans_instalment WHERE paid_off_on IS NULL",
        "transactions": "SELECT COUNT(*) FROM loans_loantransaction",
        "fees": "SELECT COUNT(*) FROM loans_loantransaction WHERE kind = 'fee'",
        "events": "SELECT COUNT(*) FROM outbox_outboxmessage",
    }
    with psycopg.connect(env["DATABASE_URL"]) as db:
        return {name: db.execute(sql).fetchone()[0] for name, sql in queries.items()}


def random_loans(env: dict[str, str], count: int) -> list[tuple[int, Decimal]]:
    with psycopg.connect(env["DATABASE_URL"]) as db:
        sql = "SELECT id, emi FROM loans_loan WHERE status = 'DISBURSED' ORDER BY random() LIMIT %s"
        return db.execute(sql, [count]).fetchall()


def _amount(emi: Decimal, payoff: Decimal, index: int) -> Decimal:
    """An instalment most often, sometimes half of one or two (a prepayment); never more than the payoff."""
    share = (Decimal(1), Decimal(1), Decimal("0.5"), Decimal(2))[index % 4]
    return min(payoff, (emi * share).quantize(Decimal("0.01")))


def time_servicing(pool, loans: list[tuple[int, Decimal]], today: str) -> tuple[dict, dict, dict]:
    """Payoff quote then repayment on each loan; the first WARM_UP loans are not timed."""
    headers = {"Authorization": f"Bearer {test_keys.mint(user_id=ADMIN_ID, role='admin')}"}
    quotes, repayments, last = [], [], None
    for index, (loan_id, emi) in enumerate(loans):
        quoted, response = call(pool, "GET", f"/api/loan/{loan_id}/payoff?date={today}", 200, headers=headers)
        payoff = Decimal(response.json()["data"]["payoff"])
        body = json.dumps({"amount": str(_amount(emi, payoff, index)), "date": today})
        post = {**headers, "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        path = f"/api/loan/{loan_id}/repayments"
        repaid, response = call(pool, "POST", path, 201, body=body, headers=post)
        if index >= WARM_UP:
            quotes.append(quoted)
            repayments.append(repaid)
        last = (path, body, post, response.data)
    return percentiles(quotes), percentiles(repayments), _replay_check(pool, *last)


def _replay_check(pool, path: str, body: str, headers: dict, first: bytes) -> dict:
    """The last repayment sent again with its key: the stored reply, if the Idempotency-Key middleware is in."""
    response = pool.request("POST", path, body=body, headers=headers)
    replayed = response.headers.get("Idempotent-Replayed") == "true" and response.data == first
    return {"status": response.status, "replayed": replayed}


def run_daily(env: dict[str, str], today: str) -> dict:
    """`manage.py run_daily --as-of today`: its counts, its own time, the process's wall time and new rows."""
    before = book(env)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "run_daily", "--as-of", today],
        cwd=SERVICE,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    match = SUMMARY.search(done.stdout)
    if match is None:
        raise AssertionError(f"run_daily printed no summary: {done.stdout!r} {done.stderr[-2000:]!r}")
    after = book(env)
    counts = {
        name: Decimal(value) if name == "fee_amount" else float(value) for name, value in match.groupdict().items()
    }
    new = {name: after[name] - before[name] for name in ("fees", "events")}
    return {**counts, "wall": wall, "new_fees": new["fees"], "new_events": new["events"]}


def report(args, figures: dict) -> bool:
    """Print the figures; True when every target is met."""
    baseline = figures["health"]["p50"]
    size, timed = figures["book"], args.requests
    print(
        f"\n{size['loans']:,} disbursed loans, {size['instalments']:,} instalments ({size['unpaid']:,} unpaid), ",
        end="",
    )
    print(f"{size['transactions']:,} transactions; as of {args.today}; seeded in {args.seed_seconds:.1f} s")
    print(f"{timed} sequential requests each (after {WARM_UP} warm-up), one keep-alive connection, random loans")
    print(f"{'endpoint':<44} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p50 / baseline':>15}")
    for name, key in (
        ("GET /health (baseline)", "health"),
        ("GET payoff quote", "payoff"),
        ("POST repayment", "repay"),
    ):
        row = figures[key]
        print(f"{name:<44} {row['p50']:>8.2f} {row['p95']:>8.2f} {row['p99']:>8.2f} {row['p50'] / baseline:>14.1f}x")
    replay = figures["replay"]
    print(
        f"same Idempotency-Key sent again: {replay['status']}, {'replayed' if replay['replayed'] else 'NOT replayed'}"
    )
    print(
        f"\n{'daily job, as of ' + args.today:<28} {'wall s':>7} {'job s':>7} {'loans/s':>8} {'instal./s':>10} ", end=""
    )
    print(f"{'fees':>6} {'overdue':>8} {'remind':>7} {'arrears':>8} {'replay':>7} {'new events':>11}")
    for name in ("first", "second"):
        run = figures[name]
        print(
            f"{name + ' run':<28} {run['wall']:>7.2f} {run['seconds']:>7.2f} {run['loans'] / run['wall']:>8,.0f} "
            f"{size['instalments'] / run['wall']:>10,.0f} {run['new_fees']:>6} {run['overdue']:>8.0f} "
            f"{run['reminders']:>7.0f} {run['arrears']:>8.0f} {run['replayed']:>7.0f} {run['new_events']:>11}"
        )
    print(f"\nmachine: {figures['load_before']} before, {load()} after")
    return _verdicts(figures)


def _verdicts(figures: dict) -> bool:
    first, second = figures["first"], figures["second"]
    checks = [
        (f"repayment p95 <= {TARGET_REPAYMENT_P95_MS:g} ms", figures["repay"]["p95"] <= TARGET_REPAYMENT_P95_MS),
        (f"first daily run <= {TARGET_DAILY_SECONDS:g} s (wall)", first["wall"] <= TARGET_DAILY_SECONDS),
        ("first daily run did real work", first["fees"] > 0 and first["overdue"] > 0 and first["reminders"] > 0),
        ("second daily run: no fee, no event", second["new_fees"] == 0 and second["new_events"] == 0),
    ]
    for name, met in checks:
        print(f"target {name}: {'met' if met else 'NOT met'}")
    return all(met for _, met in checks)


def measure(args, env: dict[str, str], figures: dict) -> None:
    loans = random_loans(env, args.requests + WARM_UP)
    if len(loans) < args.requests + WARM_UP:
        raise SystemExit(f"only {len(loans)} loans for {args.requests + WARM_UP} requests: use more --loans")
    with running_service(env) as pool:
        figures["health"] = timed(pool, "/health", args.requests)
        figures["payoff"], figures["repay"], figures["replay"] = time_servicing(pool, loans, args.today)
    figures["book"] = book(env)
    figures["first"] = run_daily(env, args.today)
    figures["second"] = run_daily(env, args.today)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    args.today = datetime.now(UTC).date().isoformat()  # loan_service's day (TIME_ZONE is UTC)
    install_signal_handlers()
    figures = {"load_before": load()}
    seed = ("seed_servicing", "--count", str(args.loans), "--as-of", args.today)
    with seeded_database(DATABASE, *seed) as (env, args.seed_seconds):
        print(f"seeded {args.loans:,} disbursed loans in {args.seed_seconds:.1f} s ({load()})")
        measure(args, env, figures)
    met = report(args, figures)
    print("all targets met" if met else "FAILED: a target is not met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
