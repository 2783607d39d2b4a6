import io
import json
import logging.config
import os

import pytest
from django.conf import settings
from django.core.cache import cache
from kombu import Connection
from rest_framework.test import APIClient

from common.events import EVENT_QUEUE
from common.logging import logging_config
from common.testing import skip_unless_postgres, test_keys
from tests.local_servers import RedisServer, ScriptedServer, free_port


def pytest_collection_modifyitems(config, items):
    skip_unless_postgres(items)


class Api(APIClient):
    def as_role(self, role: str, user_id: int = 5, **claims):
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {test_keys.mint(user_id=user_id, role=role, **claims)}")
        return self

    def as_token(self, token: str):
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return self


@pytest.fixture
def api():
    # A view's exception must reach the client as the 500 a real client would get, not be re-raised.
    return Api(raise_request_exception=False)


@pytest.fixture(autouse=True)
def _no_ambient_broker(monkeypatch):
    # Celery prefers CELERY_BROKER_URL from the environment (CI exports one) over an app's own broker,
    # which would send a "broker down" test's events to a live broker.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def closed_url() -> str:
    """An http URL on a local port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def http_server():
    """Start scripted local HTTP servers; all are stopped after the test."""
    servers: list[ScriptedServer] = []

    def start(**kwargs) -> ScriptedServer:
        server = ScriptedServer(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def broker_url():
    """TEST_BROKER_URL (CI: Redis), else a private redis-server started for this run."""
    configured = os.environ.get("TEST_BROKER_URL", "")
    if configured:
        yield configured
        return
    try:
        server = RedisServer()
    except FileNotFoundError:
        pytest.skip("no broker: set TEST_BROKER_URL or install redis-server")
    try:
        yield server.url
    finally:
        server.stop()


def drain_events(url: str) -> list[dict]:
    """Consume every message waiting in the events queue: [{"id", "task", "body", "headers"}]."""
    messages = []
    with Connection(url) as conn, conn.SimpleQueue(EVENT_QUEUE) as queue:
        while True:
            try:
                message = queue.get(block=False)  # sends are complete when send_task returns
            except queue.Empty:
                return messages
            headers = message.headers
            body = message.decode()
            messages.append({"id": headers["id"], "task": headers["task"], "body": body, "headers": headers})
            message.ack()


@pytest.fixture
def broker(broker_url):
    """A real broker whose events queue is empty at the start of the test."""
    drain_events(broker_url)
    yield broker_url
    drain_events(broker_url)


@pytest.fixture
def json_logs():
    """The project's logging config, writing to a buffer; returns a function giving the parsed lines."""
    buffer = io.StringIO()
    config = logging_config("common_tests", "INFO")
    config["handlers"]["console"]["stream"] = buffer
    logging.config.dictConfig(config)

    def lines() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield lines
    logging.config.dictConfig(settings.LOGGING)
