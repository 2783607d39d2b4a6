"""The DRF defaults, the cache and the allowed hosts every service shares."""

import pytest

from common.django_settings import CACHE_TABLE, allowed_hosts, shared_cache
from common.drf import rest_framework_settings


@pytest.mark.parametrize(
    ("environment", "argument", "expected"),
    [(None, None, 1), ("0", None, 0), ("2", None, 2), ("2", 0, 0)],
    ids=["default-the-gateway", "from-env-none", "from-env-two", "argument-wins"],
)
def test_drf_trusts_num_proxies_for_the_client_address(monkeypatch, environment, argument, expected):
    if environment is None:
        monkeypatch.delenv("NUM_PROXIES", raising=False)
    else:
        monkeypatch.setenv("NUM_PROXIES", environment)

    config = rest_framework_settings(authentication=[], num_proxies=argument)

    assert config["NUM_PROXIES"] == expected


def test_with_redis_url_the_cache_is_redis(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/3")

    cache = shared_cache()["default"]

    assert cache == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.example:6379/3",
    }


def test_without_redis_url_the_cache_is_a_database_table_not_process_memory(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)

    cache = shared_cache()["default"]

    assert cache["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    assert cache["LOCATION"] == CACHE_TABLE
    assert cache["OPTIONS"]["MAX_ENTRIES"] >= 10_000


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        pytest.param({}, ["localhost", "loan-service"], id="default"),
        pytest.param({"ALLOWED_HOSTS": "lms.example.com"}, ["lms.example.com"], id="configured"),
        pytest.param({"ALLOWED_HOSTS": "a.example", "POD_IP": "10.1.2.3"}, ["a.example", "10.1.2.3"], id="pod"),
        pytest.param({"ALLOWED_HOSTS": "10.1.2.3", "POD_IP": "10.1.2.3"}, ["10.1.2.3"], id="pod-listed"),
    ],
)
def test_a_pods_own_address_is_an_allowed_host(monkeypatch, environment, expected):
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("POD_IP", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert allowed_hosts(["localhost", "loan-service"]) == expected
