"""Events to in-app notifications on Redis: latency from the producer's commit, and throughput of one worker.

    .venv/bin/python benchmarks/notifications.py [--rate 100] [--seconds 10] [--burst 2000]

The real path: loan_service commits a change and its outbox row (PostgreSQL),
its `relay_outbox` process sends the row to Redis, one notification worker
(`celery worker`, 2 pool processes, as manage_all runs it) consumes it and
stores the in-app notification as sent. Two databases and a Redis database of
their own; everything is dropped and stopped at the end.

Phase 1 publishes `--rate` events a second for `--seconds` and reports the
p50 / p95 / p99 from commit to the outbox row being relayed (the baseline:
what the relay alone costs) and from commit to the notification being sent.
Phase 2 commits `--burst` events at once and reports events per second
through the worker.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PRODUCER_DB, CONSUMER_DB = "lms_bench_producer", "lms_bench_consumer"
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")


def database_url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        name: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
    }


def start(argv: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        argv, cwd=cwd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def setup_producer(env: dict) -> None:
    """This process becomes loan_service (to write outbox rows exactly as it does)."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "loan_service.settings"
    sys.path.insert(0, str(ROOT / "loan_service"))
    import django

    django.setup()


def publish(count: int, first_id: int) -> dict[str, float]:
    """Commit `count` events in one transaction; their event ids and commit time."""
    from django.db import transaction

    from common import events
    from common.outbox.publisher import publish as outbox_publish

    with transaction.atomic():
        ids = [
            str(
                outbox_publish(
                    events.LoanCreated(
                        loan_id=first_id + i,
                        customer_id=first_id + i,
                        agent_id=1,
                        principal="10000.00",
                        interest="8.45",
                        months=12,
                        emi="871.97",
                        amount="10463.59",
                        total_interest="463.59",
                        status="NEW",
                    )
                ).event_id
            )
            for i in range(count)
        ]
    committed = time.time()
    return dict.fromkeys(ids, committed)


def sent_times(event_ids: set[str]) -> dict[str, float]:
    with psycopg.connect(database_url(CONSUMER_DB)) as db:
        rows = db.execute(
            "SELECT event_id::text, sent_at FROM notifications_notification WHERE channel = 'in_app'"
        ).fetchall()
    return {event_id: sent.timestamp() for event_id, sent in rows if event_id in event_ids}


def relayed_times(event_ids: set[str]) -> dict[str, float]:
    with psycopg.connect(database_url(PRODUCER_DB)) as db:
        rows = db.execute(
            "SELECT event_id::text, sent_at FROM outbox_outboxmessage WHERE sent_at IS NOT NULL"
        ).fetchall()
    return {event_id: sent.timestamp() for event_id, sent in rows if event_id in event_ids}


def wait_all(event_ids: set[str], timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sent_times(event_ids)
        if len(found) == len(event_ids):
            return found
        time.sleep(0.1)
    raise SystemExit(f"only {len(sent_times(event_ids))} of {len(event_ids)} notifications arrived")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=100, help="events a second in phase 1")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--burst", type=int, default=2000)
    args = parser.parse_args()

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        for name in (PRODUCER_DB, CONSUMER_DB):
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {name}")
    redis.Redis.from_url(BROKER).flushdb()
    var = Path(tempfile.mkdtemp(prefix="lms-bench-"))
    base = {**os.environ, "LMS_VAR_DIR": str(var), "CELERY_BROKER_URL": BROKER, "LOG_LEVEL": "WARNING"}
    producer_env = {**base, "DATABASE_URL": database_url(PRODUCER_DB), "OUTBOX_RELAY_INTERVAL": "0.02"}
    consumer_env = {**base, "DATABASE_URL": database_url(CONSUMER_DB), "NOTIFICATION_CHANNELS": ""}
    python = sys.executable
    for folder, env in ((ROOT / "loan_service", producer_env), (ROOT / "notification_service", consumer_env)):
        subprocess.run(
            [python, "manage.py", "migrate", "--noinput"], cwd=folder, env=env, check=True, capture_output=True
        )

    relay = start([python, "manage.py", "relay_outbox"], ROOT / "loan_service", producer_env)
    worker = start(
        [
            str(Path(python).parent / "celery"),
            "-A",
            "notification_service.celery",
            "worker",
            "-Q",
            "events,notifications",
            "--concurrency",
            "2",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        ROOT / "notification_service",
        consumer_env,
    )
    try:
        setup_producer(producer_env)
        wait_all(set(publish(1, 0)), timeout=60)  # warm-up: the worker is ready when this one arrives

        committed: dict[str, float] = {}
        interval, next_at = 1 / args.rate, time.monotonic()
        for n in range(args.rate * args.seconds):
            next_at += interval
            committed |= publish(1, 1000 + n)
            time.sleep(max(0.0, next_at - time.monotonic()))
        sent = wait_all(set(committed), timeout=120)
        relayed = relayed_times(set(committed))

        burst_started = time.time()
        burst = publish(args.burst, 1_000_000)
        burst_sent = wait_all(set(burst), timeout=600)
        burst_seconds = max(burst_sent.values()) - burst_started
    finally:
        stop(relay)
        stop(worker)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            for name in (PRODUCER_DB, CONSUMER_DB):
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        redis.Redis.from_url(BROKER).flushdb()

    relay_latency = percentiles([relayed[e] - committed[e] for e in committed])
    total_latency = percentiles([sent[e] - committed[e] for e in committed])
    print(
        f"\n{len(committed)} events at {args.rate}/s, Redis broker, one worker (2 pool processes), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(f"{'commit ->':<32} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, figures in (
        ("outbox row relayed (baseline)", relay_latency),
        ("in-app notification sent", total_latency),
    ):
        print(f"{name:<32} {figures['p50']:>8.1f} {figures['p95']:>8.1f} {figures['p99']:>8.1f}")
    print(f"consumer share of p50: {total_latency['p50'] / max(relay_latency['p50'], 0.001):.1f}x the relay's")
    print(
        f"\nburst of {args.burst} events: {args.burst / burst_seconds:.0f} events/s through one worker "
        f"({burst_seconds:.1f} s commit to last notification)"
    )
    print(f"target p95 < 500 ms at {args.rate} events/s: {'met' if total_latency['p95'] < 500 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
