"""Login throttles: the client address a proxy vouches for, counters shared by every process, the 429 headers."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.factories import PASSWORD
from users.throttles import LoginPerEmailThrottle

LOGIN = "/api/user/login"
SERVICE_ROOT = Path(__file__).resolve().parents[1]
GATEWAY = "10.9.0.1"  # REMOTE_ADDR of every request: the gateway in front of the service
CLIENT = "203.0.113.7"  # the address the gateway saw and appended to X-Forwarded-For


@pytest.mark.django_db
def test_a_spoofed_forwarded_for_does_not_escape_the_per_ip_throttle(api, login_rates):
    login_rates(per_ip="2/min")

    # given a client that puts a new made-up address in front of the gateway's entry each time
    statuses = [
        api.post(
            LOGIN,
            {"email": f"guess{n}@example.com", "password": "whatever-1A"},
            format="json",
            REMOTE_ADDR=GATEWAY,
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, {CLIENT}",
        ).status_code
        for n in range(3)
    ]

    # then the throttle still counts them as one client
    assert statuses == [401, 401, 429]


@pytest.mark.django_db
def test_clients_behind_the_same_gateway_are_counted_apart(api, login_rates):
    login_rates(per_ip="1/min")

    first = api.post(
        LOGIN, {"email": "a@example.com", "password": "x-Y-z-123"}, format="json", HTTP_X_FORWARDED_FOR=CLIENT
    )
    second = api.post(
        LOGIN, {"email": "b@example.com", "password": "x-Y-z-123"}, format="json", HTTP_X_FORWARDED_FOR="203.0.113.8"
    )

    assert (first.status_code, second.status_code) == (401, 401)


@pytest.mark.django_db
def test_a_throttled_login_says_the_limit_and_when_it_resets(api, customer, login_rates):
    login_rates(per_email="2/min")
    for _ in range(2):
        api.post(LOGIN, {"email": customer.email, "password": "wrong-Password-1"}, format="json")

    refused = api.post(LOGIN, {"email": customer.email, "password": PASSWORD}, format="json")

    assert refused.status_code == 429
    assert refused["RateLimit-Limit"] == "2"
    assert refused["RateLimit-Remaining"] == "0"
    # One attempt is free again when the older one ages out (Retry-After), all when the newer one does.
    assert 1 <= int(refused["Retry-After"]) <= int(refused["RateLimit-Reset"]) <= 60


@pytest.mark.django_db
def test_an_email_is_counted_under_a_fixed_size_key_the_same_however_it_is_spelt(api, login_rates):
    login_rates(per_email="2/min")
    email = "d" * 242 + "@example.com"  # 254 characters, the longest allowed

    statuses = [
        api.post(LOGIN, {"email": spelling, "password": "whatever-1A"}, format="json").status_code
        for spelling in (email, f"  {email.upper()} ", email)
    ]
    key = LoginPerEmailThrottle().get_cache_key(SimpleNamespace(data={"email": email}), None)

    assert statuses == [401, 401, 429]
    assert email not in key
    assert len(key) == len("throttle_login_email_") + 64


@pytest.mark.django_db
def test_an_email_over_254_characters_is_a_400_on_email_and_never_counted(api, login_rates):
    login_rates(per_email="1/min")
    too_long = "e" * 243 + "@example.com"  # 255 characters

    replies = [api.post(LOGIN, {"email": too_long, "password": "whatever-1A"}, format="json") for _ in range(3)]

    assert [reply.status_code for reply in replies] == [400, 400, 400]
    assert replies[0].json()["error"]["code"] == "validation_error"
    assert list(replies[0].json()["error"]["details"]) == ["email"]
    assert LoginPerEmailThrottle().get_cache_key(SimpleNamespace(data={"email": too_long}), None) is None


# --------------------------------------------------------------------------- several processes, no Redis

ATTEMPTS = """
import json, django
django.setup()
from django.test import Client
client = Client()
print(json.dumps([
    client.post("/api/user/login", {"email": "nobody@example.com", "password": "whatever-1A"},
                content_type="application/json").status_code
    for _ in range(2)
]))
"""


def _service_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "user_service.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'users.sqlite3'}",
        "LMS_VAR_DIR": str(tmp_path),
        "LOGIN_RATE_PER_IP": "3/min",
        "LOGIN_RATE_PER_EMAIL": "100/min",
    }


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=SERVICE_ROOT, env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_without_redis_two_worker_processes_share_the_login_limit(tmp_path):
    # given a fresh database migrated the way `manage_all.py up` does it, and no REDIS_URL
    env = _service_env(tmp_path)
    _run(env, "manage.py", "migrate", "--verbosity", "0")

    # when two processes (two gunicorn workers) each take two attempts from the same address
    first = json.loads(_run(env, "-c", ATTEMPTS))
    second = json.loads(_run(env, "-c", ATTEMPTS))

    # then the limit of 3 is one limit for both
    assert first == [401, 401]
    assert second == [401, 429]
