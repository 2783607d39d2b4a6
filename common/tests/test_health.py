"""`/health` says the process answers; `/health/ready` says its database and broker answer too."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.local_servers import free_port

pytestmark = pytest.mark.django_db

PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client()
live, ready = client.get("/health"), client.get("/health/ready")
print(json.dumps({"live": [live.status_code, live.json()], "ready": [ready.status_code, ready.json()]}))
"""


def test_liveness_answers_ok_without_touching_the_database(api, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = api.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "common_tests"}


def test_ready_when_the_database_answers_and_no_broker_is_configured(api):
    response = api.get("/health/ready/")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert list(body["checks"]) == ["database"]
    assert body["checks"]["database"]["status"] == "ok"


def test_still_ready_but_degraded_when_the_broker_is_down(api, settings):
    # Events wait in the outbox: a broker outage must not take the API out of its load balancer.
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = api.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"]["status"] == "down"


@pytest.mark.broker
def test_ready_when_the_broker_answers(api, settings, broker_url):
    settings.CELERY_BROKER_URL = broker_url

    response = api.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["checks"]["broker"]["status"] == "ok"


@pytest.mark.parametrize(
    "database_url",
    [f"postgresql://postgres@127.0.0.1:{free_port()}/lms_nowhere", "sqlite:////nonexistent-folder/lms.sqlite3"],
    ids=["postgresql-refused", "sqlite-unopenable"],
)
def test_with_the_database_down_the_process_is_alive_but_not_ready(database_url, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url,
        "LMS_VAR_DIR": str(tmp_path),
    }

    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    replies = json.loads(result.stdout.strip().splitlines()[-1])
    assert replies["live"] == [200, {"status": "ok", "service": "common_tests"}]
    status, body = replies["ready"]
    assert status == 503
    assert body["checks"]["database"]["status"] == "down"
    assert "nonexistent" not in json.dumps(body)  # the reason's class, not the configuration


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_health_only_answers_get(api, path):
    response = api.post(path)

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.json()["correlation_id"] == response["X-Correlation-ID"]


def test_health_needs_no_token(api):
    assert api.get("/health", HTTP_AUTHORIZATION="Bearer garbage").status_code == 200
