"""The whole system as real processes on free ports, driven over HTTP only.

It starts exactly what `manage_all.py up` starts (the same process plan),
with its own state folder, databases from E2E_<SERVICE>_DATABASE_URL
(PostgreSQL in CI) or fresh SQLite files, the broker from CELERY_BROKER_URL
(Redis in CI) or the server-less default, and a local SMTP server catching
the emails. Every process is stopped at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import manage_all
from tests.client import Client


def free_port_block(size: int) -> int:
    """A base port with `size` consecutive free ports after it."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size >= 65000:
            continue
        if all(_port_free(base + offset) for offset in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class System:
    """A running system: its ports, processes and logs."""

    var: Path
    base_port: int
    extra_env: dict[str, str]
    supervisor: manage_all.Supervisor = field(default_factory=manage_all.Supervisor)
    specs: dict[str, manage_all.ProcessSpec] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.var / "system.log"

    def url(self, label: str = "gateway") -> str:
        offset = {"gateway": 0, "user": 1, "loan": 2, "notification": 3}[label]
        return f"http://127.0.0.1:{self.base_port + offset}"

    @property
    def gateway(self) -> Client:
        return Client(self.url("gateway"))

    def service(self, label: str) -> Client:
        return Client(self.url(label))

    def start(self, only: set[str] | None = None) -> None:
        self.supervisor.output = self.log_path.open("a", buffering=1)
        for spec in manage_all.plan(self.base_port, self.var, extra_env=self.extra_env, only=only):
            self.specs[spec.label] = spec
            self.supervisor.start(spec)
        self.wait_healthy()

    def wait_healthy(self, labels: list[str] | None = None, timeout: float = 90) -> None:
        for label in labels or list(self.supervisor.running):
            spec = self.specs[label]
            if spec.health_url and not manage_all.wait_healthy(
                spec.health_url, timeout=timeout, process=self.supervisor.running.get(label)
            ):
                raise RuntimeError(f"{label} did not become healthy; see {self.log_path}:\n{self.tail()}")

    def stop_process(self, label: str, *, kill: bool = False) -> None:
        import signal

        self.supervisor.stop(label, sig=signal.SIGKILL if kill else signal.SIGTERM)

    def start_process(self, label: str) -> None:
        self.supervisor.start(self.specs[label])
        self.wait_healthy([label])

    def stop(self) -> None:
        self.supervisor.stop_all()

    def tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_records(self, label_prefix: str = "") -> list[dict]:
        """Every JSON log line, with the process label that wrote it under `_process`."""
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            label, _, rest = line.partition("| ")
            if not rest.startswith("{") or not label.strip().startswith(label_prefix):
                continue
            try:
                record = json.loads(rest)
            except ValueError:
                continue
            record["_process"] = label.strip()
            records.append(record)
        return records


def prepare(var: Path, *, extra_env: dict[str, str]) -> System:
    """Keys and migrated databases for a fresh system under `var`."""
    for service in manage_all.existing_services():
        e2e_url = os.environ.get(f"E2E_{service.database_env}")
        if e2e_url:
            os.environ[service.database_env] = e2e_url
        else:
            os.environ.pop(service.database_env, None)  # a fresh SQLite file under var/
    os.environ["LMS_VAR_DIR"] = str(var)
    manage_all.ensure_dev_keys(var)
    base_port = free_port_block(4)
    manage_all.migrate_all(var, base_port=base_port, extra_env=extra_env)
    return System(var=var, base_port=base_port, extra_env=extra_env)


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.2, message: str = "condition"):
    """Poll until `predicate()` returns something truthy; fail with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
