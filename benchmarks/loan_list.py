"""Loan lists over 100,000 loans in PostgreSQL, through the real HTTP stack (gunicorn, as manage_all runs it).

    .venv/bin/python benchmarks/loan_list.py [--loans 100000] [--requests 400]

Seeds a database of its own (lms_bench_loan, dropped at the end), starts
loan_service under gunicorn on a free port, and times with one pooled
client: GET /health (the baseline: the same stack without the list), the
admin list filtered by status (newest first) and a customer's list, each a
page of 20. Also counts the SQL queries of one request of each list at page
sizes 20 and 100. Prints p50 / p95 / p99 and the ratio to the baseline, and
exits 1 unless every list's p95 is under 25 ms and its query count is the
same at both page sizes (over full pages).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import urllib3

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "loan_service"
sys.path.insert(0, str(ROOT / "common"))

from common.testing import test_keys  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "lms_bench_loan"

TARGET_P95_MS = 25.0
CUSTOMER_ID = 42  # seed_loans spreads loans over customers 1..500: about 200 each at 100,000
LISTS = {
    "admin": ("admin", 1, "/api/loan/list-loans-admin-agent?status=APPROVED&page_size={size}"),
    "customer": ("customer", CUSTOMER_ID, "/api/loan/list-loans-customer?page_size={size}"),
}

# Run in `manage.py shell`: prints "<list> <page size> <queries> <rows>" per request.
QUERY_COUNT = f"""
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from common.testing import test_keys
with override_settings(JWT_PUBLIC_KEY_PATHS=[str(test_keys.public_path)]):
    for name, (role, user_id, path) in {LISTS!r}.items():
        token = test_keys.mint(user_id=user_id, role=role)
        for size in (20, 100):
            with CaptureQueriesContext(connection) as queries:
                response = Client().get(path.format(size=size), HTTP_AUTHORIZATION=f"Bearer {{token}}")
            assert response.status_code == 200, response.content
            print(name, size, len(queries), len(response.json()["data"]["results"]))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "mean": statistics.fmean(ordered) * 1000}


def timed(pool: urllib3.HTTPConnectionPool, path: str, token: str, count: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for _ in range(20):  # warm-up: connections, caches, the first query plans
        pool.request("GET", path, headers=headers)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = pool.request("GET", path, headers=headers)
        samples.append(time.perf_counter() - started)
        assert response.status == 200, response.data[:300]
    return percentiles(samples)


def prepare(args) -> dict[str, str]:
    """A fresh database, migrated and seeded; the environment loan_service runs with."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{DATABASE}",
        "LMS_VAR_DIR": tempfile.mkdtemp(prefix="lms-bench-"),
        "JWT_PUBLIC_KEY_PATHS": str(test_keys.public_path),
        "JWT_JWKS_URL": "",
        "LOG_LEVEL": "WARNING",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=SERVICE, env=env, check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run([*manage, "seed_loans", "--count", str(args.loans)], cwd=SERVICE, env=env, check=True)
    print(f"seeded {args.loans:,} loans (with history) in {time.perf_counter() - started:.1f} s")
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
        db.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load: index-only counts
    return env


def count_queries(env: dict[str, str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(SQL queries, rows) of one request of each list, at page sizes 20 and 100."""
    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", QUERY_COUNT],
        cwd=SERVICE,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [line.split() for line in shell.splitlines() if re.fullmatch(r"\w+ \d+ \d+ \d+", line.strip())]
    return {(name, int(size)): (int(queries), int(rows)) for name, size, queries, rows in lines}


GUNICORN = [
    str(Path(sys.executable).parent / "gunicorn"),
    "loan_service.wsgi:application",
    *("--workers", "2", "--worker-class", "gthread", "--threads", "4"),
]


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, urllib3.HTTPConnectionPool]:
    """loan_service under gunicorn on a free port, and one keep-alive client for it."""
    port = free_port()
    server = subprocess.Popen(
        [*GUNICORN, "--bind", f"127.0.0.1:{port}"],
        cwd=SERVICE,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pool = urllib3.HTTPConnectionPool(
        "127.0.0.1", port, maxsize=1, retries=urllib3.Retry(connect=50, backoff_factor=0.1)
    )
    pool.request("GET", "/health")
    return server, pool


def time_lists(pool: urllib3.HTTPConnectionPool, requests: int) -> dict[str, dict[str, float]]:
    results = {"GET /health (baseline)": timed(pool, "/health", "", requests)}
    for name, (role, user_id, path) in LISTS.items():
        token = test_keys.mint(user_id=user_id, role=role)
        results[f"{name} list"] = timed(pool, path.format(size=20), token, requests)
    return results


def report(args, results: dict[str, dict[str, float]], counts: dict[tuple[str, int], tuple[int, int]]) -> bool:
    """Print the figures; True when every target is met."""
    baseline = results["GET /health (baseline)"]["p50"]
    print(f"\n{args.requests} sequential requests each, one keep-alive connection, page of 20, {args.loans:,} loans")
    print(f"(admin list: status=APPROVED, newest first; customer list: customer {CUSTOMER_ID}'s own loans)")
    print(f"{'endpoint':<46} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p50 / baseline':>15}")
    for name, figures in results.items():
        print(
            f"{name:<46} {figures['p50']:>8.2f} {figures['p95']:>8.2f} {figures['p99']:>8.2f} "
            f"{figures['p50'] / baseline:>14.1f}x"
        )
    met = True
    print()
    for name in LISTS:
        (small, _), (large, rows) = counts.get((name, 20), (None, 0)), counts.get((name, 100), (None, 0))
        flat = small is not None and small == large and rows == 100  # a short page would prove nothing
        met &= flat
        verdict = "constant" if flat else "NOT shown constant" + ("" if rows == 100 else f": only {rows} rows")
        print(f"SQL queries per {name} list request: page_size 20 -> {small}, page_size 100 -> {large} ({verdict})")
    worst = max(figures["p95"] for name, figures in results.items() if name.endswith(" list"))
    fast = worst < TARGET_P95_MS
    print(f"target p95 < {TARGET_P95_MS:g} ms: {'met' if fast else 'NOT met'} (worst list p95 {worst:.2f} ms)")
    return met and fast


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()

    server = None
    try:
        env = prepare(args)
        counts = count_queries(env)
        server, pool = start_server(env)
        results = time_lists(pool, args.requests)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    met = report(args, results, counts)
    print("all targets met" if met else "FAILED: a target is not met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
