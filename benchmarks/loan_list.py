"""Loan lists over 100,000 loans in PostgreSQL, through the real HTTP stack (gunicorn, as manage_all runs it).

    .venv/bin/python benchmarks/loan_list.py [--loans 100000] [--requests 400] [--offset-requests 100]
    .venv/bin/python benchmarks/loan_list.py --loans 1000000     # the deep pages at a million loans

Seeds a database of its own (lms_bench_loan, dropped at the end), starts
loan_service under gunicorn on a free port, and times with one pooled
client: GET /health (the baseline: the same stack without the list), the
admin list filtered by status (newest first) and a customer's list, each a
page of 20. Also counts the SQL queries of one request of each list at page
sizes 20 and 100. Prints p50 / p95 / p99 and the ratio to the baseline.

Then the deep pages of the admin list (all loans, and status=APPROVED; newest
first, pages of 20): page 1, page 2, the middle page and the last page, each
read by cursor (keyset: the cursors are built from the rows at those places,
exactly as the service signs them) and by page number (OFFSET; the service
runs with MAX_PAGE_DEPTH lifted so that it may), after checking that both
give the same rows; the pages of one kind are timed in turns, one request
each per round. Prints their p50 / p95, the ratio of the last page's p95 to
the first's, and PostgreSQL's plan of the last page's keyset query.

Exits 1 unless every list's p95 is under 25 ms, its query count is the same
at both page sizes (over full pages), and the last page by cursor has a p95
within 20 % of the first page's.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time

import urllib3
from stack import SERVICE, percentiles, running_service, seeded_database, test_keys, timed

DATABASE = "lms_bench_loan"

TARGET_P95_MS = 25.0
TARGET_DEEP_RATIO = 1.2  # the last page by cursor: p95 at most 20 % above the first page's
DEEP_PAGE_SIZE = 20
DEEP_LISTS = {  # name: (selectors.list_loans filters, the path's query)
    "all loans": ({}, ""),
    "APPROVED": ({"status": "APPROVED"}, "status=APPROVED&"),
}
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


# Run in `manage.py shell`: prints "<list>|<page>|<offset>|<cursor>" for page 1, 2, the middle and the last page.
DEEP_CURSORS = f"""
from common.pagination import decode_cursor, encode_cursor, in_key_order, rows_after
from loans import selectors
from loans.models import Loan
size = {DEEP_PAGE_SIZE}
for name, (filters, _) in {DEEP_LISTS!r}.items():
    rows, keys = in_key_order(selectors.list_loans(**filters))
    pages = -(-rows.count() // size)
    for page in sorted({{1, 2, max(1, pages // 2), pages}}):
        offset = (page - 1) * size
        cursor = encode_cursor(rows[offset - 1], Loan, keys) if page > 1 else ""
        print(f"{{name}}|{{page}}|{{offset}}|{{cursor}}")
    values = decode_cursor(cursor, Loan, keys)
    for line in rows.filter(rows_after(keys, values))[: size + 1].explain().splitlines():
        print(f"plan|{{name}}|{{line}}")
"""


def shell(env: dict[str, str], script: str) -> str:
    """What `script` prints, run in loan_service's `manage.py shell`."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=SERVICE,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def count_queries(env: dict[str, str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(SQL queries, rows) of one request of each list, at page sizes 20 and 100."""
    printed = shell(env, QUERY_COUNT)
    lines = [line.split() for line in printed.splitlines() if re.fullmatch(r"\w+ \d+ \d+ \d+", line.strip())]
    return {(name, int(size)): (int(queries), int(rows)) for name, size, queries, rows in lines}


def deep_cursors(env: dict[str, str]) -> dict[str, list[tuple[int, int, str]]]:
    """For each deep list: (page, offset, cursor) of page 1 (no cursor), 2, the middle and the last page."""
    pages: dict[str, list[tuple[int, int, str]]] = {}
    for line in shell(env, DEEP_CURSORS).splitlines():
        if line.startswith("plan|"):
            _, name, plan = line.split("|", 2)
            print(f"last page's keyset query, {name}: {plan}")
        elif line.count("|") == 3:
            name, page, offset, cursor = line.split("|")
            pages.setdefault(name, []).append((int(page), int(offset), cursor))
    return pages


def time_lists(pool: urllib3.HTTPConnectionPool, requests: int) -> dict[str, dict[str, float]]:
    results = {"GET /health (baseline)": timed(pool, "/health", requests)}
    for name, (role, user_id, path) in LISTS.items():
        token = test_keys.mint(user_id=user_id, role=role)
        results[f"{name} list"] = timed(pool, path.format(size=20), requests, {"Authorization": f"Bearer {token}"})
    return results


def deep_paths(query: str, page: int, cursor: str) -> tuple[str, str]:
    """The same page of the admin list by cursor (page 1: no cursor) and by page number."""
    base = f"/api/loan/list-loans-admin-agent?{query}page_size={DEEP_PAGE_SIZE}"
    return (f"{base}&cursor={cursor}" if cursor else base), f"{base}&page={page}"


def same_rows(pool: urllib3.HTTPConnectionPool, token: str, by_cursor: str, by_number: str) -> None:
    """Both ways give one page of the same rows (the last one ending the list), or the benchmark is void."""
    headers = {"Authorization": f"Bearer {token}"}
    pages = [json.loads(pool.request("GET", path, headers=headers).data)["data"] for path in (by_cursor, by_number)]
    ids = [[row["id"] for row in page["results"]] for page in pages]
    assert ids[0], by_cursor
    assert ids[0] == ids[1], (by_cursor, ids)
    assert pages[0]["next_cursor"] == pages[1]["next_cursor"], by_cursor


def timed_together(pool: urllib3.HTTPConnectionPool, paths: list[str], token: str, rounds: int) -> list[dict]:
    """Like timed() for several paths at once, one request of each per round: a load that comes and goes
    on the machine weighs on all of them alike, so their ratios hold."""
    headers = {"Authorization": f"Bearer {token}"}
    for path in paths * 10:  # warm-up
        pool.request("GET", path, headers=headers)
    samples: list[list[float]] = [[] for _ in paths]
    for _ in range(rounds):
        for path, times in zip(paths, samples, strict=True):
            started = time.perf_counter()
            response = pool.request("GET", path, headers=headers)
            times.append(time.perf_counter() - started)
            assert response.status == 200, response.data[:300]
    return [percentiles(times) for times in samples]


def time_deep_pages(pool, cursors, args) -> dict[str, list[tuple[int, int, dict, dict]]]:
    """Per deep list: (page, offset, figures by cursor, figures by page number) of each page measured."""
    token = test_keys.mint(user_id=1, role="admin", lifetime=4 * 3600)  # OFFSET pages at 1,000,000 take minutes
    results: dict[str, list[tuple[int, int, dict, dict]]] = {}
    for name, pages in cursors.items():
        paths = [deep_paths(DEEP_LISTS[name][1], page, cursor) for page, _, cursor in pages]
        for by_cursor, by_number in paths:
            same_rows(pool, token, by_cursor, by_number)
        keyset = timed_together(pool, [by_cursor for by_cursor, _ in paths], token, args.requests)
        numbered = timed_together(pool, [by_number for _, by_number in paths], token, args.offset_requests)
        results[name] = [(page, offset, keyset[i], numbered[i]) for i, (page, offset, _) in enumerate(pages)]
    return results


def report_deep(args, deep: dict[str, list[tuple[int, int, dict, dict]]]) -> bool:
    """Print the deep pages' figures; True when the last page by cursor is within the target of the first."""
    met = True
    for name, pages in deep.items():
        print(f"\nadmin list, {name}, newest first, pages of {DEEP_PAGE_SIZE}, {args.loans:,} loans:")
        print(f"{'page':>8} {'offset':>9} | {'cursor p50':>10} {'p95 ms':>7} | {'page= p50':>10} {'p95 ms':>7}")
        for page, offset, keyset, numbered in pages:
            print(
                f"{page:>8,} {offset:>9,} | {keyset['p50']:>10.2f} {keyset['p95']:>7.2f} | "
                f"{numbered['p50']:>10.2f} {numbered['p95']:>7.2f}"
            )
        (_, _, first_keyset, first_numbered), (_, _, last_keyset, last_numbered) = pages[0], pages[-1]
        ratio = last_keyset["p95"] / first_keyset["p95"]
        offset_ratio = last_numbered["p95"] / first_numbered["p95"]
        met &= ratio <= TARGET_DEEP_RATIO
        verdict = "met" if ratio <= TARGET_DEEP_RATIO else "NOT met"
        print(f"p95 last / first: by cursor {ratio:.2f}x (target <= {TARGET_DEEP_RATIO:g}x: {verdict}), ", end="")
        print(f"by page number (OFFSET) {offset_ratio:.2f}x")
    return met


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
    parser.add_argument("--offset-requests", type=int, default=100, help="per page by page number (OFFSET)")
    args = parser.parse_args()

    with seeded_database(DATABASE, "seed_loans", "--count", str(args.loans)) as (env, seconds):
        print(f"seeded {args.loans:,} loans (with history) in {seconds:.1f} s")
        counts = count_queries(env)
        cursors = deep_cursors(env)
        # Page numbers stop at 10,000 rows in service; lifted here to time the OFFSET pages they replace.
        with running_service({**env, "MAX_PAGE_DEPTH": str(2 * args.loans + DEEP_PAGE_SIZE)}) as pool:
            results = time_lists(pool, args.requests)
            deep = time_deep_pages(pool, cursors, args)
    met = report(args, results, counts)
    met &= report_deep(args, deep)
    print("all targets met" if met else "FAILED: a target is not met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
