"""The gateway as a real gunicorn process in front of stand-in upstream processes on free ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from django.utils.datastructures import CaseInsensitiveMapping

from common.testing import test_keys
from gateway import routing

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent


def redis_or_skip() -> str:
    """GATEWAY_TEST_REDIS_URL (default db 7 of a local Redis) if a server answers there, else skip the test."""
    url = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis server at {url}")
    return url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Stub:
    """One stand-in upstream process; `requests()` is what it received."""

    name: str
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.jsonl"

    def start(self) -> None:
        argv = [
            sys.executable,
            str(HERE / "upstream_stub.py"),
            str(self.port),
            str(self.log),
            str(test_keys.public_path),
            str(test_keys.private_path),  # to mint the tokens of API keys, as user_service does
        ]
        self.process = subprocess.Popen(argv, start_new_session=True, env={**os.environ, "PYTHONPATH": str(PROJECT)})
        wait_until_up(f"{self.url}/health", self.process)

    def stop(self) -> None:
        stop(self.process)
        self.process = None

    def requests(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def forget(self) -> None:
        self.log.unlink(missing_ok=True)

    def accept_keys(self, keys: dict[str, dict]) -> None:
        """From now on, exchange exactly these API keys (key -> id, name, rate_limit, scope, user_id, role)."""
        self.log.with_suffix(".keys").write_text(json.dumps(keys))

    def slow_health(self, seconds: float) -> None:
        """From now on, answer GET /health after `seconds`."""
        self.log.with_suffix(".health-delay").write_text(str(seconds))

    def health_checks(self) -> int:
        """How many GET /health this stub has answered since it first started."""
        path = self.log.with_suffix(".health")
        return len(path.read_text().splitlines()) if path.exists() else 0


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen
    stubs: dict[str, Stub]
    log_path: Path

    def request(self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None, timeout=10):
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                reply = (response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            reply = (error.code, error.headers, error.read())
        status, headers, content = reply
        return Reply(
            status,
            CaseInsensitiveMapping(dict(headers)),
            content,
            elapsed=time.monotonic() - started,
            header_list=list(headers.items()),
        )


@dataclass
class Reply:
    status: int
    headers: CaseInsensitiveMapping
    body: bytes
    elapsed: float = 0.0
    header_list: list[tuple[str, str]] = field(default_factory=list)  # every header line, repeats included

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.header_list if key.lower() == name.lower()]

    @property
    def json(self):
        return json.loads(self.body)


def start_gateway(
    folder: Path, stubs: dict[str, Stub], *, workers: int = 1, wait_for_checks: bool = True, **overrides: str
) -> Gateway:
    """The gateway under gunicorn, as manage_all starts it, in front of `stubs`; its output goes to a log file.

    Returned once it answers and, with `wait_for_checks`, once it has checked its upstreams (or found itself
    misconfigured), so that /health reports what the stubs are.
    """
    port = free_port()
    env = {
        **os.environ,
        "LMS_VAR_DIR": str(folder),
        "USER_SERVICE_URLS": ",".join(stub.url for name, stub in stubs.items() if name.startswith("user")),
        "LOAN_SERVICE_URLS": stubs["loan"].url,
        "NOTIFICATION_SERVICE_URLS": stubs["notification"].url,
        "JWT_JWKS_URL": f"{stubs['user'].url}/api/user/.well-known/jwks.json",
        "JWT_PUBLIC_KEY_PATHS": "",
        "JWT_JWKS_REFRESH_COOLDOWN": "30",  # the first token loads the key set; unknown kids wait this long
        "GATEWAY_READ_TIMEOUT": "1.5",
        "GATEWAY_DEADLINE": "2.5",
        "GATEWAY_HEALTH_INTERVAL": "600",  # one round at start: the breaker, not the checker, must react in these tests
        "GATEWAY_BREAKER_FAILURES": "3",
        "GATEWAY_BREAKER_RESET_SECONDS": "1",
        "MAX_BODY_BYTES": "2000",
        "RATE_LIMIT_LOGIN": "3",
        "RATE_LIMIT_PER_IP": "100000",  # every test comes from one address: the IP and user limits have their own
        "RATE_LIMIT_PER_USER": "100000",
        "REDIS_URL": "",
        "CORS_ALLOWED_ORIGINS": "https://app.example",
        "LOG_LEVEL": "INFO",
        **overrides,
    }
    log_path = folder / f"gateway-{port}.log"
    argv = [str(Path(sys.executable).parent / "gunicorn"), "gateway_project.wsgi:application"]
    argv += ["--config", str(PROJECT / "gunicorn.conf.py")]  # as manage_all starts it: metrics of all workers
    argv += [
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gateway_project.worker.GatewayThreadWorker",
        "--threads",
        "8",
    ]
    process = subprocess.Popen(
        argv, cwd=PROJECT, env=env, start_new_session=True, stdout=log_path.open("w"), stderr=subprocess.STDOUT
    )
    gateway = Gateway(f"http://127.0.0.1:{port}", process, stubs, log_path)
    try:
        wait_until_up(f"{gateway.url}/health/live", process)
        if wait_for_checks:
            wait_until_checked(gateway)
    except BaseException:
        stop(process)
        raise
    return gateway


def wait_until_checked(gateway: Gateway, timeout: float = 10) -> None:
    """Until /health/ready is past "starting": the health checker has been round every upstream once."""
    deadline = time.monotonic() + timeout
    while gateway.request("GET", "/health/ready").json["status"] == "starting":
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway never finished its first health checks")
        time.sleep(0.05)


@contextlib.contextmanager
def stubs_running(
    folder: Path, names: tuple[str, ...] = ("user", "loan", "notification"), *, running: tuple[str, ...] | None = None
) -> Iterator[dict[str, Stub]]:
    """A stub per name (those in `running` started, all by default), every one stopped afterwards."""
    stubs = {name: Stub(name, folder) for name in names}
    try:
        for name in running if running is not None else names:
            stubs[name].start()
        yield stubs
    finally:
        for stub in stubs.values():
            stub.stop()


@contextlib.contextmanager
def gateway_running(folder: Path, stubs: dict[str, Stub], **options: Any) -> Iterator[Gateway]:
    """start_gateway(folder, stubs, **options), stopped afterwards, also on failure."""
    started = start_gateway(folder, stubs, **options)
    try:
        yield started
    finally:
        stop(started.process)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gateway")
    names = ("user", "user_b", "loan", "notification")  # two user instances
    with stubs_running(folder, names) as stubs, gateway_running(folder, stubs) as started:
        yield started


@pytest.fixture
def stubs(gateway):
    for stub in gateway.stubs.values():
        stub.forget()
    yield gateway.stubs
    close_breakers(gateway)


PREFIXES = {name: prefix for prefix, name in routing.PREFIXES.items()}  # upstream name -> its path prefix


def breaker_states(gateway: Gateway) -> dict[str, str]:
    """Each instance's breaker ("upstream url" -> state), as /health reports it."""
    services = gateway.request("GET", "/health").json["services"]
    return {f"{name} {url}": state["breaker"] for name, s in services.items() for url, state in s["instances"].items()}


def close_breakers(gateway: Gateway, timeout: float = 5.0) -> None:
    """Wait out the cool-down of any breaker a test opened and close it with a trial, so no test sees another's."""
    deadline = time.monotonic() + timeout
    while not_closed := {key for key, state in breaker_states(gateway).items() if state != "closed"}:
        assert time.monotonic() < deadline, f"breakers still not closed: {not_closed}"
        for name in {key.split()[0] for key in not_closed}:
            gateway.request("GET", f"{PREFIXES[name]}/breaker-trial", headers=bearer())
        time.sleep(0.1)


def bearer(**claims) -> dict:
    return {"Authorization": f"Bearer {test_keys.mint(**{'user_id': 5, 'role': 'customer', **claims})}"}
