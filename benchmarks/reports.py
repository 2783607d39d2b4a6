"""The portfolio and collections reports over 100,000 disbursed loans in PostgreSQL, through gunicorn.

    .venv/bin/python benchmarks/reports.py [--loans 100000] [--requests 200]

Seeds a database of its own (lms_bench_reports, dropped at the end) with `manage.py seed_servicing`
(about ten instalments a loan, most paid on time, some behind: see benchmarks/servicing.py), starts
loan_service under gunicorn on a free port and times with one keep-alive client, `--requests`
sequential GETs each: /health (the baseline), the portfolio today (the loan table alone), today per
agent, as one agent, on a day 90 days back (each loan's latest balance by then, from the
transactions), as CSV, and collections by month over twelve months. Checks that today's figures are
the sums of the loan rows. Prints p50 / p95 / p99 and the ratio to the baseline; exits 1 unless
today's portfolio p95 is at most 50 ms.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
from stack import install_signal_handlers, load, running_service, seeded_database, test_keys, timed

DATABASE = "lms_bench_reports"
TARGET_PORTFOLIO_P95_MS = 50.0


def book(env: dict[str, str]) -> dict:
    with psycopg.connect(env["DATABASE_URL"]) as db:
        loans, instalments, transactions = (
            db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608 - constant names
            for table in ("loans_loan", "loans_instalment", "loans_loantransaction")
        )
        outstanding = db.execute("SELECT SUM(outstanding_principal) FROM loans_loan").fetchone()[0]
        agent = db.execute("SELECT agent_id FROM loans_loan GROUP BY agent_id ORDER BY COUNT(*) DESC").fetchone()[0]
        agents = db.execute("SELECT COUNT(DISTINCT agent_id) FROM loans_loan").fetchone()[0]
    return {
        "loans": loans,
        "instalments": instalments,
        "transactions": transactions,
        "outstanding": outstanding,
        "agent": agent,
        "agents": agents,
    }


def measure(args, env: dict[str, str]) -> tuple[dict, dict]:
    size = book(env)
    # Tokens that outlive the run (the past day's report takes a while on a loaded machine).
    admin = {"Authorization": f"Bearer {test_keys.mint(user_id=1, role='admin', lifetime=3600)}"}
    agent_token = test_keys.mint(user_id=size["agent"], role="agent", is_approved=True, lifetime=3600)
    agent = {"Authorization": f"Bearer {agent_token}"}
    past = (datetime.now(UTC).date() - timedelta(days=90)).isoformat()
    cases = {
        "GET /health (baseline)": ("/health", None),
        "portfolio today": ("/api/loan/reports/portfolio", admin),
        f"portfolio today ?by=agent ({size['agents']} agents)": ("/api/loan/reports/portfolio?by=agent", admin),
        "portfolio today, as one agent": ("/api/loan/reports/portfolio", agent),
        "portfolio today as CSV, by agent": ("/api/loan/reports/portfolio?by=agent&format=csv", admin),
        f"portfolio as_of {past} (transactions)": (f"/api/loan/reports/portfolio?as_of={past}", admin),
        "collections, 12 months": ("/api/loan/reports/collections", admin),
    }
    figures = {}
    with running_service(env) as pool:
        for name, (path, headers) in cases.items():
            figures[name] = timed(pool, path, args.requests, headers)
            print(f"  {name}: p95 {figures[name]['p95']:.2f} ms", flush=True)
        report = pool.request("GET", "/api/loan/reports/portfolio", headers=admin).json()["data"]
    size["reported"] = Decimal(report["outstanding_principal"])
    return size, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    install_signal_handlers()
    today = datetime.now(UTC).date().isoformat()
    before = load()
    with seeded_database(DATABASE, "seed_servicing", "--count", str(args.loans), "--as-of", today) as (env, seconds):
        print(f"seeded {args.loans:,} disbursed loans in {seconds:.1f} s ({load()})")
        size, figures = measure(args, env)
    print(
        f"\n{size['loans']:,} loans, {size['instalments']:,} instalments, {size['transactions']:,} transactions; "
        f"{args.requests} sequential requests each after 20 warm-up, one keep-alive connection"
    )
    baseline = figures["GET /health (baseline)"]["p50"]
    print(f"{'request':<52} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p50 / baseline':>15}")
    for name, row in figures.items():
        print(f"{name:<52} {row['p50']:>8.2f} {row['p95']:>8.2f} {row['p99']:>8.2f} {row['p50'] / baseline:>14.1f}x")
    print(f"\nmachine: {before} before, {load()} after")
    exact = size["reported"] == size["outstanding"]
    print(f"outstanding principal reported {size['reported']}, sum of the rows {size['outstanding']}: ", end="")
    print("equal" if exact else "DIFFERENT")
    met = figures["portfolio today"]["p95"] <= TARGET_PORTFOLIO_P95_MS
    print(f"target portfolio today p95 <= {TARGET_PORTFOLIO_P95_MS:g} ms: {'met' if met else 'NOT met'}")
    return 0 if met and exact else 1


if __name__ == "__main__":
    sys.exit(main())
