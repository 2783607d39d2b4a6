"""Pure rules of the gateway: which paths go where, /internal/ in every disguise, token buckets."""

import uuid

import pytest

from gateway.metrics import is_internal
from gateway.ratelimit import LocalBuckets, RedisBuckets
from gateway.routing import decoded_path, metric_route, route_for
from tests.conftest import redis_or_skip


@pytest.mark.parametrize(
    ("method", "path", "upstream", "public"),
    [
        ("POST", "/api/user/login", "user", True),
        ("POST", "/api/user/login/", "user", True),
        ("GET", "/api/user/.well-known/jwks.json", "user", True),
        ("GET", "/api/user/profile", "user", False),
        ("GET", "/api/user/login", "user", False),  # only POST login is public
        ("GET", "/api/loan/12/schedule?x=1", "loan", False),
        ("GET", "/api/notifications", "notification", False),
        ("GET", "/api/notifications/5", "notification", False),
    ],
)
def test_routes(method, path, upstream, public):
    route = route_for(method, path)

    assert (route.upstream, route.public) == (upstream, public)


@pytest.mark.parametrize(
    "path",
    [
        "/internal/users/1",
        "/api/user/internal/users/1",
        "/api/user/../../internal/users/1",
        "/api/user/..%2F..%2Finternal/users/1",
        "/api/user/%2e%2e/%2e%2e/internal/users/1",
        "/api/user/%252e%252e/internal",
        "/api/loan//internal/users/1",
        "/api/loan/%2Finternal%2Fusers%2F1",
        "/api/loan/%69nternal/users/1",
        "/api/user/INTERNAL/users/1",
        "/api/user/.\\internal",
        "/api/user%2Finternal/users/1",
        "/api/user%252Finternal/users/1",
        "/api/user/..%2f..%2finternal",
        "/api/user/internal/",
        "/api/user/internal%20/users",
        "/api/user/internal%2E/users",
        "/API/user/internal",
        "/api/user/internal;jsessionid=1/users",
        "/api/user/..;/internal",
        "/api/user/%2e%2e;x/internal",
        "/api/user/..;/..;/other/thing",
        "/api/userx/profile",
        "/api",
        "/admin/",
        "/api/loans/1",
    ],
)
def test_never_routed(path):
    assert route_for("GET", path) is None


def test_encoding_many_times_over_hides_nothing():
    assert decoded_path("/api/user/%25252e%25252e/%252569nternal") is None
    assert decoded_path("/api/user/profile%3Fx") == "/api/user/profile?x"


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/api/loan/12/schedule/", "/api/loan/{id}/schedule"),
        ("/api/loan/12", "/api/loan/{id}"),
        ("/api/loan/quote", "/api/loan/quote"),
        ("/api/user/approve-delete/7", "/api/user/approve-delete/{user_id}"),
        ("/api/user/token/refresh/", "/api/user/token/refresh"),
        ("/api/user/.well-known/jwks.json", "/api/user/.well-known/jwks.json"),
        ("/api/notifications/", "/api/notifications"),
        ("/api/notifications/5/read", "/api/notifications/{id}/read"),
        ("/api/loan/abc", "other"),
        ("/api/loan/12/schedule/extra", "other"),
        ("/api/user/profile-of-anyone-i-like", "other"),
        ("/api/loan/\u0661\u0662", "other"),  # Arabic-Indic digits are not an id
        ("/api/user/profile?x", "other"),
    ],
)
def test_metric_labels_are_route_templates_or_other(path, label):
    assert metric_route(path) == label


def test_a_bucket_allows_its_capacity_then_refuses_with_retry_after():
    buckets = LocalBuckets()

    verdicts = [buckets.take([("k", 3)])[0] for _ in range(4)]

    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
    assert verdicts[3].retry_after >= 1
    assert verdicts[3].headers()["Retry-After"] == str(verdicts[3].retry_after)
    assert buckets.take([("other", 3)])[0].allowed


@pytest.fixture
def redis_url():
    return redis_or_skip()


def test_redis_buckets_are_shared_between_processes(redis_url):
    key = f"test-{uuid.uuid4().hex}"
    first, second = RedisBuckets(redis_url), RedisBuckets(redis_url)  # two gateway processes

    verdicts = [process.take([(key, 3)])[0] for process in (first, second, first, second)]

    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[3].retry_after >= 1


@pytest.mark.parametrize("store", ["local", "redis"])
def test_every_bucket_of_a_request_counts_it_whatever_the_others_say(store, request):
    buckets = LocalBuckets() if store == "local" else RedisBuckets(request.getfixturevalue("redis_url"))
    wide, narrow = f"wide-{uuid.uuid4().hex}", f"narrow-{uuid.uuid4().hex}"

    rounds = [buckets.take([(wide, 5), (narrow, 2)]) for _ in range(3)]

    assert [[v.allowed for v in verdicts] for verdicts in rounds] == [[True, True], [True, True], [True, False]]
    assert [verdicts[0].remaining for verdicts in rounds] == [4, 3, 2]
    assert [verdict.limit for verdict in rounds[0]] == [5, 2]


def test_redis_buckets_fall_back_to_local_limits_when_redis_is_down():
    buckets = RedisBuckets("redis://127.0.0.1:9/0")  # nothing listens there

    verdicts = [buckets.take([("k", 2)])[0] for _ in range(3)]

    assert [v.allowed for v in verdicts] == [True, True, False]


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("10.20.30.40", True),
        ("172.31.0.1", True),
        ("::1", True),
        ("172.32.0.1", False),
        ("203.0.113.9", False),
        ("not-an-ip", False),
        ("", False),
    ],
)
def test_metrics_networks(address, internal):
    networks = ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]

    assert is_internal(address, networks) is internal
