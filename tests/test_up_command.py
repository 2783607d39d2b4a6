"""The README's first command: `manage_all.py up` on the embedded default (SQLite, the server-less broker).

It is run exactly as a person runs it, in its own state folder, and stopped
with SIGTERM (what Ctrl-C and a service manager send): the whole system must
come up, a signup must travel through the outbox relay, the file-system
broker and the Celery worker into a notification, and after the stop no
process of it may be left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.actors import sign_up
from tests.client import Client
from tests.harness import free_port_block, wait_for

ROOT = Path(__file__).resolve().parent.parent
# Anything that would point `up` away from its embedded default.
NOT_INHERITED = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "TEST_BROKER_URL", "LMS_VAR_DIR")


def _embedded_env(var: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(NOT_INHERITED) and not key.startswith("E2E_")
    }
    env.update({"LMS_VAR_DIR": str(var), "LMS_WEB_WORKERS": "1", "OUTBOX_RELAY_INTERVAL": "0.1"})
    return env


def _processes_of(var: Path) -> list[int]:
    """Processes whose environment names this state folder: everything `up` started."""
    marker = f"LMS_VAR_DIR={var}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def up(tmp_path):
    base_port = free_port_block(4)
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage_all.py", "up", "--base-port", str(base_port)],
        cwd=ROOT,
        env=_embedded_env(tmp_path / "var"),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process, Client(f"http://127.0.0.1:{base_port}"), tmp_path
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        for pid in _processes_of(tmp_path / "var"):
            os.kill(pid, signal.SIGKILL)
        log.close()


def test_up_runs_the_whole_system_on_the_embedded_default_and_sigterm_stops_every_process(up):
    process, gateway, folder = up
    output = folder / "up.log"

    wait_for(
        lambda: "all services are up" in output.read_text() or process.poll() is not None,
        timeout=180,
        message="`up` to report every service healthy",
    )
    assert process.poll() is None, output.read_text()[-3000:]
    assert gateway.get("/health").json["status"] == "ok"
    assert sorted(path.name for path in (folder / "var").glob("*.sqlite3")) == [
        "loan_service.sqlite3",
        "notification_service.sqlite3",
        "user_service.sqlite3",
    ]

    customer = sign_up(gateway, "customer")  # outbox → relay → file-system broker → worker
    welcome = wait_for(
        lambda: customer.api.get("/api/notifications/?kind=user.registered").data["results"],
        timeout=30,
        message="the welcome notification delivered by the worker",
    )
    assert {n["channel"] for n in welcome} == {"in_app", "email"}
    assert len(_processes_of(folder / "var")) >= 7  # four web servers, two relays, the worker (and its pool)

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0
    assert time.monotonic() - started < 30
    assert _processes_of(folder / "var") == []
    assert "stopping all processes" in output.read_text()
