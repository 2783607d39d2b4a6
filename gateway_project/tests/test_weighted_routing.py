"""Weighted routing through the real gateway: a 90 / 10 release of the user service over two stub instances."""

from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import bearer, gateway_running, stubs_running


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The gateway with `v1*90` on the stub "user" and `v2*10` on the stub "user_b"."""
    folder = tmp_path_factory.mktemp("weighted")
    with stubs_running(folder, ("user", "user_b", "loan", "notification")) as stubs:
        urls = f"v1*90={stubs['user'].url},v2*10={stubs['user_b'].url}"
        with gateway_running(folder, stubs, USER_SERVICE_URLS=urls, GATEWAY_BREAKER_RESET_SECONDS="30") as gateway:
            yield gateway


def _group_of(gateway, reply) -> str:
    return {str(gateway.stubs["user"].port): "v1", str(gateway.stubs["user_b"].port): "v2"}[
        reply.headers["X-Upstream-Port"]
    ]


def _profile(gateway, user_id: int, **headers):
    return gateway.request("GET", "/api/user/profile", headers={**bearer(user_id=user_id, role="customer"), **headers})


def test_each_user_sticks_to_one_group_and_the_split_follows_the_weights(release):
    seen: dict[int, set[str]] = {}
    for _ in range(2):
        for user_id in range(1, 301):
            reply = _profile(release, user_id)
            assert reply.status == 200
            seen.setdefault(user_id, set()).add(_group_of(release, reply))

    assert all(len(groups) == 1 for groups in seen.values())
    shares = Counter(next(iter(groups)) for groups in seen.values())
    assert abs(shares["v2"] / 300 - 0.10) <= 0.01, shares


def test_admins_reach_the_new_group_with_x_canary_and_others_are_not_moved_by_it(release):
    admins = {
        _group_of(
            release,
            release.request(
                "GET", "/api/user/profile", headers={**bearer(user_id=user_id, role="admin"), "X-Canary": "always"}
            ),
        )
        for user_id in range(1, 41)
    }
    customers = {
        user_id: _group_of(release, _profile(release, user_id, **{"X-Canary": "always"})) for user_id in range(1, 41)
    }
    without = {user_id: _group_of(release, _profile(release, user_id)) for user_id in range(1, 41)}

    assert admins == {"v2"}
    assert customers == without  # the header from a customer is ignored
    assert set(without.values()) == {"v1", "v2"}


def test_requests_are_counted_by_group_for_comparing_the_versions(release):
    for user_id in range(1, 21):
        _profile(release, user_id)

    text = release.request("GET", "/metrics").body.decode()
    groups = {
        sample.labels["group"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_requests_total" and sample.labels.get("upstream") == "user"
    }
    assert groups == {"v1", "v2"}


def test_a_dead_groups_users_are_served_by_the_live_group_without_an_error(release):
    users_of_v2 = [user_id for user_id in range(1, 101) if _group_of(release, _profile(release, user_id)) == "v2"]
    users_of_v1 = [user_id for user_id in range(1, 101) if user_id not in users_of_v2]
    release.stubs["user_b"].stop()
    try:
        gets = [_profile(release, user_id) for user_id in users_of_v2]
        posts = [
            release.request("POST", "/api/user/logout", body=b'{"refresh": "r"}', headers=bearer(user_id=user_id))
            for user_id in users_of_v2
        ]
        others = [_group_of(release, _profile(release, user_id)) for user_id in users_of_v1]
        groups = release.request("GET", "/health").json["services"]["user"]["groups"]
    finally:
        release.stubs["user_b"].start()

    assert users_of_v2
    assert [reply.status for reply in gets + posts] == [200] * (2 * len(users_of_v2))
    assert {_group_of(release, reply) for reply in gets + posts} == {"v1"}
    assert set(others) == {"v1"}  # nobody else moved
    assert {name: (group["weight"], group["status"]) for name, group in groups.items()} == {
        "v1": (90, "up"),
        "v2": (10, "down"),
    }
