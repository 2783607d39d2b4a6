"""The README's first command: `manage_all.py up` on the embedded default (SQLite, the server-less broker).

It is run exactly as a person runs it, in its own state folder, and stopped
with SIGTERM (what Ctrl-C and a service manager send): the whole system must
come up, a signup must travel through the outbox relay, the file-system
broker and the notification worker into a notification, loan_service's own
worker and beat must run on the same broker, and after the stop no process
of it may be left.
"""

from __future__ import annotations

import os
import signal
import socket
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


def _command_lines(var: Path) -> list[str]:
    lines = []
    for pid in _processes_of(var):
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


def _logged(log: Path, label: str, text: str) -> bool:
    """Whether the process labelled `label` wrote a line containing `text` to `up`'s log."""
    return any(line.startswith(f"{label} ") and text in line for line in log.read_text().splitlines())


def _ping(var: Path, service: str) -> str:
    """`celery inspect ping` to that service's worker node, through the file-system broker under `var`."""
    env = {**_embedded_env(var), "DJANGO_SETTINGS_MODULE": f"{service}.settings"}
    node = f"{service}@{socket.gethostname()}"
    argv = [sys.executable, "-m", "celery", "-A", f"{service}.celery", "inspect", "ping", "-d", node, "--timeout", "10"]
    return subprocess.run(argv, cwd=ROOT / service, env=env, capture_output=True, text=True, check=False).stdout


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

    # loan_service's worker (queue "loans") and beat: started, on the broker, answering by their own node name
    wait_for(
        lambda: _logged(output, "loan-worker", f"loan_service@{socket.gethostname()} ready.")
        and _logged(output, "loan-beat", "beat: Starting"),
        timeout=30,
        message="the loan worker ready and the loan beat started",
    )
    assert "pong" in _ping(folder / "var", "loan_service")
    commands = _command_lines(folder / "var")
    for expected in (
        "-A loan_service.celery worker -Q loans",
        "-A loan_service.celery beat",
        "-A notification_service.celery worker -Q events,notifications",
        "-A notification_service.celery beat",
    ):
        assert any(expected in command for command in commands), expected
    # four web servers and a worker each, two relays, two Celery workers and their pools (1 + 2), two beats
    assert len(commands) >= 17

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0
    assert time.monotonic() - started < 30
    assert _processes_of(folder / "var") == []
    assert "stopping all processes" in output.read_text()
