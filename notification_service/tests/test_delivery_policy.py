"""The retry schedule (exponential backoff with full jitter, from settings) and the checks settings make at start."""

import os
import random
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from common.env import ConfigurationError
from notifications import delivery_policy
from notifications.models import Notification
from notifications.tasks import retry_countdown


def test_the_backoff_bound_doubles_from_the_base_up_to_the_cap():
    bounds = [delivery_policy.backoff_bound(retries, base=2, cap=20) for retries in range(7)]

    assert bounds == [2, 4, 8, 16, 20, 20, 20]


def test_the_delay_is_drawn_below_the_bound_full_jitter():
    assert delivery_policy.retry_delay(3, base=2, cap=300, rng=lambda: 0.0) == 0
    assert delivery_policy.retry_delay(3, base=2, cap=300, rng=lambda: 0.5) == 8
    assert delivery_policy.retry_delay(10, base=2, cap=300, rng=lambda: 0.999) == pytest.approx(299.7)


def test_delays_are_spread_not_synchronised():
    rng = random.Random(7)

    delays = [delivery_policy.retry_delay(4, base=2, cap=300, rng=rng.random) for _ in range(200)]

    assert all(0 <= delay < 32 for delay in delays)
    assert min(delays) < 8
    assert max(delays) > 24


def test_a_zero_base_retries_at_once_and_a_huge_retry_count_does_not_overflow():
    assert delivery_policy.retry_delay(3, base=0, cap=300) == 0
    assert delivery_policy.backoff_bound(10_000, base=2, cap=300) == 300


def test_the_task_countdown_follows_the_settings(settings):
    settings.NOTIFICATION_RETRY_BACKOFF_SECONDS = 3
    settings.NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS = 10

    for retries, bound in [(0, 3), (1, 6), (2, 10), (5, 10)]:
        delays = [retry_countdown(retries) for _ in range(100)]
        assert all(0 <= delay <= bound for delay in delays)
        assert max(delays) > bound / 2


@pytest.mark.parametrize(
    ("base", "cap", "max_retries", "longest"),
    [(2, 300, 5, 32), (2, 300, 10, 300), (1, 2, 10, 2), (2, 300, 0, 0)],
    ids=["below-cap", "at-cap", "end-to-end-suite", "no-retries"],
)
def test_the_longest_retry_delay(base, cap, max_retries, longest):
    assert delivery_policy.longest_retry_delay(base=base, cap=cap, max_retries=max_retries) == longest


def test_the_channels_of_the_policy_are_the_models():
    assert set(delivery_policy.CHANNELS) == set(Notification.Channel.values)


def test_an_unknown_channel_is_refused_by_name():
    with pytest.raises(ConfigurationError, match=r"'fax'.*choose from email, sms, push, in_app"):
        delivery_policy.check_channels(["email", "fax"])


def test_a_visibility_timeout_not_above_the_longest_retry_is_refused():
    with pytest.raises(ConfigurationError, match="CELERY_VISIBILITY_TIMEOUT"):
        delivery_policy.check_visibility_timeout({"visibility_timeout": 300}, longest_delay=300)
    delivery_policy.check_visibility_timeout({"visibility_timeout": 301}, longest_delay=300)
    delivery_policy.check_visibility_timeout({}, longest_delay=300)  # brokers without one (filesystem, RabbitMQ)


def load_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    """Import the service's settings in a fresh process, as `manage.py` or a worker would at start."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFICATION_", "CELERY_"))}
    return subprocess.run(
        [sys.executable, "-c", "import notification_service.settings"],
        cwd=django_settings.BASE_DIR,
        env={**clean, "LMS_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_service_refuses_to_start_with_an_unknown_channel(tmp_path):
    started = load_settings(tmp_path, NOTIFICATION_CHANNELS="email,fax")

    assert started.returncode != 0
    assert "NOTIFICATION_CHANNELS has unknown channel(s) 'fax'" in started.stderr


REDIS = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/9"}


def test_the_service_refuses_a_redis_visibility_timeout_shorter_than_a_retry(tmp_path):
    started = load_settings(
        tmp_path, **REDIS, CELERY_VISIBILITY_TIMEOUT="60", NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS="300"
    )

    assert started.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT (60 s) must be longer than the longest retry delay (300 s" in started.stderr


@pytest.mark.parametrize(
    "env",
    [
        {},
        # What the end-to-end suite runs with (tests/conftest.py).
        {
            "CELERY_VISIBILITY_TIMEOUT": "8",
            "NOTIFICATION_RETRY_BACKOFF_SECONDS": "1",
            "NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS": "2",
        },
    ],
    ids=["defaults", "end-to-end-suite"],
)
def test_the_service_starts_with_consistent_redis_settings(tmp_path, env):
    started = load_settings(tmp_path, **REDIS, **env)

    assert started.returncode == 0, started.stderr
