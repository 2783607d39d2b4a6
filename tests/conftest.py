"""Fixtures of the end-to-end suite: one real system per session, its own broker, a local SMTP server, users."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # manage_all.py lives at the root

import manage_all  # noqa: E402
from tests.actors import PASSWORD, Actor, sign_in, unique_email  # noqa: E402
from tests.brokers import RedisServer, redis_available  # noqa: E402
from tests.browser import SAVED as SAVED_ARTEFACTS  # noqa: E402
from tests.harness import System, prepare  # noqa: E402
from tests.otlp import OTLPReceiver  # noqa: E402
from tests.smtp import CapturingSMTP  # noqa: E402

__all__ = ["PASSWORD", "unique_email"]


# Stories first, then the admin in a browser, then the drills that stop processes, then the fuzzer that fills
# the databases.
MODULE_ORDER = [
    "test_story",
    "test_generated_client",
    "test_tracing",
    "test_roles",
    "test_observability",
    "test_edge",
    "test_admin_browser",
    "test_account_security",
    "test_drills",
    "test_dead_letters",
    "test_fuzz",
]


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.module.__name__.rsplit(".", 1)[-1]
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else -1

    items.sort(key=rank)  # stable: the order inside a module is kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on its item (`item.report_call`), for fixtures that keep what a failure left."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter):
    for path in SAVED_ARTEFACTS:
        terminalreporter.write_line(f"test artefact: {path}")


def _serving(server):
    """Start `server`, yield it, and stop it after, also on failure (a fixture's body: `yield from`)."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smtp():
    yield from _serving(CapturingSMTP())


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """A Redis server of the suite's own, so the drills can stop and restart the broker.

    Without redis-server on the machine, the system runs on the server-less
    default broker and the broker drill is skipped.
    """
    if not redis_available():
        yield None
        return
    yield from _serving(RedisServer(tmp_path_factory.mktemp("redis")))


@pytest.fixture(scope="session")
def otlp():
    """Where every process of the system exports its spans: the suite runs with tracing on, as production can."""
    yield from _serving(OTLPReceiver())


@pytest.fixture(scope="session")
def system(tmp_path_factory, smtp, broker, otlp) -> System:
    var = tmp_path_factory.mktemp("lms-var")
    extra_env = {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "OUTBOX_RELAY_INTERVAL": "0.1",
        "LMS_WEB_WORKERS": os.environ.get("LMS_WEB_WORKERS", "1"),
        "LOG_LEVEL": "INFO",
        # A worker killed mid-task gets its message back after this long (Redis), not an hour.
        "CELERY_VISIBILITY_TIMEOUT": "8",
        # Short retry delays, so the drills end in seconds.
        "NOTIFICATION_RETRY_BACKOFF_SECONDS": "1",
        "NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS": "2",
        # A send lost with its worker is taken over after this (production: 10 x EMAIL_TIMEOUT, 50 s): above
        # the worker drill's 4 s SMTP stall, so a live send is still never taken over.
        "NOTIFICATION_SENDING_TAKEOVER_SECONDS": "12",
        # The suite signs in many users from one address: the per-IP limits would be the only thing tested.
        "RATE_LIMIT_PER_IP": "100000",
        "RATE_LIMIT_PER_USER": "100000",
        "LOGIN_RATE_PER_IP": "10000/min",
        # user_service's own per-email count (the gateway keeps its 10 a minute): the browser tests sign the
        # same admin into three admin sites, each sign-in a password and a code.
        "LOGIN_RATE_PER_EMAIL": "60/min",
        # A frozen service costs the hang drill this long (the production default is 15 s). Above the worker
        # drill's 4 s SMTP stall: on SQLite a delivery holds the write lock while it talks SMTP.
        # An SSO admin is re-checked at user_service this often (production: 30 s), so the deactivation test
        # waits 3 s, not 31.
        "ADMIN_ACCOUNT_RECHECK_SECONDS": "2",
        "GATEWAY_READ_TIMEOUT": "8",
        "GATEWAY_DEADLINE": "10",
        # A revoked API key stops at the gateway within this (production: 30 s), so its test waits 2 s.
        "GATEWAY_API_KEY_CACHE_SECONDS": "2",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # milliseconds between exports (production: 5 s), so traces arrive fast
    }
    if broker is not None:
        extra_env["CELERY_BROKER_URL"] = broker.url
    running = prepare(var, extra_env=extra_env)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def admin(system) -> Actor:
    email = unique_email("admin")
    service = manage_all.SERVICES[0]
    env = manage_all.service_env(service, base_port=system.base_port, var=system.var, extra=system.extra_env)
    subprocess.run(
        [manage_all.python(), "manage.py", "createadmin", "--email", email, "--password", PASSWORD],
        cwd=service.folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return sign_in(system.gateway, email)
