"""What the loan_service benchmarks share: a seeded database of their own, loan_service under gunicorn
(as manage_all runs it) on a free port, one keep-alive client, timing and percentiles.

Each benchmark drops its database and stops its server on the way out, also on Ctrl-C, SIGTERM
or SIGHUP (`install_signal_handlers` turns those into an exception that unwinds the clean-up).
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import urllib3

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "loan_service"
sys.path.insert(0, str(ROOT / "common"))

from common.testing import test_keys  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WARM_UP = 20
GUNICORN = [
    str(Path(sys.executable).parent / "gunicorn"),
    "loan_service.wsgi:application",
    *("--workers", "2", "--graceful-timeout", "5", "--timeout", "30", "--worker-class", "gthread", "--threads", "4"),
]


class Stopped(Exception):
    """SIGTERM or SIGHUP: unwind through the clean-up like Ctrl-C does."""


def _stop(signum, frame):
    raise Stopped(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "mean": statistics.fmean(ordered) * 1000}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def service_env(database: str) -> dict[str, str]:
    """The environment loan_service runs with against `database`, with the test signing key."""
    return {
        **os.environ,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
        "LMS_VAR_DIR": tempfile.mkdtemp(prefix=f"{database}-"),
        "JWT_PUBLIC_KEY_PATHS": str(test_keys.public_path),
        "JWT_JWKS_URL": "",
        "LOG_LEVEL": "WARNING",
    }


@contextmanager
def seeded_database(database: str, *seed: str):
    """A fresh `database`, migrated, seeded with `manage.py <seed...>` and analysed; dropped at the end.

    Yields (environment, seconds the seed took)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {database}")
    try:
        env = service_env(database)
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput"], cwd=SERVICE, env=env, check=True, capture_output=True)
        started = time.perf_counter()
        subprocess.run([*manage, *seed], cwd=SERVICE, env=env, check=True)
        seconds = time.perf_counter() - started
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
            db.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
        yield env, seconds
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@contextmanager
def running_service(env: dict[str, str]):
    """loan_service under gunicorn on a free port; yields one keep-alive client for it, stops it at the end."""
    port = free_port()
    server = subprocess.Popen(
        [*GUNICORN, "--bind", f"127.0.0.1:{port}"],
        cwd=SERVICE,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pool = urllib3.HTTPConnectionPool(
            "127.0.0.1", port, maxsize=1, retries=urllib3.Retry(connect=50, backoff_factor=0.1)
        )
        pool.request("GET", "/health")
        yield pool
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)


def call(pool, method: str, path: str, expect: int, **kwargs) -> tuple[float, urllib3.BaseHTTPResponse]:
    """One request: its seconds and response; anything but `expect` raises."""
    started = time.perf_counter()
    response = pool.request(method, path, **kwargs)
    elapsed = time.perf_counter() - started
    if response.status != expect:
        raise AssertionError(f"{method} {path}: {response.status} {response.data[:300]!r}")
    return elapsed, response


def timed(pool, path: str, count: int, headers: dict | None = None) -> dict[str, float]:
    """Percentiles of `count` sequential GETs of `path` after WARM_UP untimed ones."""
    for _ in range(WARM_UP):
        call(pool, "GET", path, 200, headers=headers)
    return percentiles([call(pool, "GET", path, 200, headers=headers)[0] for _ in range(count)])
