"""Weighted instance groups: reading *_SERVICE_URLS, the split over users, stickiness, and a dead group's share."""

from collections import Counter

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import strategies as st

from gateway import upstreams, weighting
from gateway.weighting import BadGroups, GroupSpec, choose, parse_groups, point_for

A, B, C = "http://loan-a:8002", "http://loan-b:8002", "http://loan-v2:8002"


def test_a_plain_list_is_one_group_balanced_as_before():
    assert parse_groups([A, B]) == [GroupSpec("default", 100, (A, B))]


def test_a_weight_per_url_makes_a_group_per_instance_named_by_host_and_port():
    assert parse_groups([f"{A}*90", f"{C}*10"]) == [
        GroupSpec("loan-a:8002", 90, (A,)),
        GroupSpec("loan-v2:8002", 10, (C,)),
    ]


def test_named_groups_hold_several_instances():
    assert parse_groups([f"stable*90={A} {B}", f"canary*10={C}"]) == [
        GroupSpec("stable", 90, (A, B)),
        GroupSpec("canary", 10, (C,)),
    ]


@pytest.mark.parametrize(
    ("items", "complaint"),
    [
        ([], "no instance"),
        ([f"{A}*90", B], "either every item has a weight"),
        ([f"{A}*ninety", f"{B}*10"], "not a whole number"),
        ([f"{A}*-1", f"{B}*10"], "between 0 and 10000"),
        ([f"{A}*10001", f"{B}*10"], "between 0 and 10000"),
        ([f"{A}*0", f"{B}*0"], "every group has weight 0"),
        ([f"v1*50={A}", f"v1*50={B}"], "group names repeat"),
        (["v1*50=", f"v2*50={B}"], "has no instance"),
        ([f"*50={A}", f"v2*50={B}"], "expected name*weight=urls"),
    ],
)
def test_a_value_that_cannot_be_read_is_refused_with_the_reason(items, complaint):
    with pytest.raises(BadGroups, match=complaint.replace("*", r"\*")):
        parse_groups(items)


def test_the_gateway_refuses_to_start_on_a_bad_value_and_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match=r"^LOAN_SERVICE_URLS: .*whole number"):
        upstreams.build("loan", [f"{A}*x", f"{B}*10"])


def _split(weights, users, requests_per_user, down=()):
    """Which group each request of each user reached, through Upstream.pick as the proxy calls it."""
    upstream = upstreams.build("loan", [f"g{i}*{w}=http://g{i}:8002" for i, w in enumerate(weights)])
    for index in down:
        upstream.groups[index].instances[0].healthy = False
    seen: dict[int, set[str]] = {}
    count: Counter[str] = Counter()
    for _ in range(requests_per_user):
        for user in users:
            group, _instance = upstream.pick(user)
            seen.setdefault(user, set()).add(group.name)
            count[group.name] += 1
    return count, seen


@pytest.mark.parametrize("weights", [(90, 10), (50, 50), (10, 90), (1, 99), (70, 20, 10)])
def test_ten_thousand_requests_from_a_thousand_users_split_within_a_point_of_the_weights(weights):
    count, seen = _split(weights, range(1, 1001), 10)

    assert sum(count.values()) == 10_000
    for index, weight in enumerate(weights):
        share = count[f"g{index}"] / 10_000
        assert abs(share - weight / sum(weights)) <= 0.01, (weights, count)
    assert all(len(groups) == 1 for groups in seen.values())  # each user sees one group


def test_users_who_are_not_consecutive_split_as_well_by_their_hashed_identity():
    count, seen = _split((90, 10), [f"key:{n}" for n in range(1000)], 10)

    assert abs(count["g1"] / 10_000 - 0.10) <= 0.03  # a hash: within three points at this sample size
    assert all(len(groups) == 1 for groups in seen.values())


def test_a_dead_groups_share_goes_to_the_live_one_and_no_live_client_moves():
    _, before = _split((90, 10), range(1, 1001), 1)
    count, after = _split((90, 10), range(1, 1001), 10, down=(1,))

    assert count == Counter({"g0": 10_000})
    assert all(after[user] == {"g0"} for user, groups in before.items() if groups == {"g0"})


def test_a_dead_groups_clients_spread_over_the_live_groups_by_their_weights():
    count, _ = _split((60, 20, 20), range(1, 1001), 10, down=(0,))

    assert abs(count["g1"] / 10_000 - 0.5) <= 0.01
    assert abs(count["g2"] / 10_000 - 0.5) <= 0.01


def test_no_group_with_an_instance_means_no_pick():
    upstream = upstreams.build("loan", [f"{A}*90", f"{C}*10"])
    for instance in upstream.instances:
        instance.healthy = False

    assert upstream.pick(7) is None


def test_weight_zero_sends_nothing_until_it_is_the_only_one_left_and_even_then_nothing():
    count, _ = _split((100, 0), range(1, 1001), 1)
    assert count == Counter({"g0": 1000})
    upstream = upstreams.build("loan", [f"{A}*100", f"{C}*0"])
    upstream.groups[0].instances[0].healthy = False
    assert upstream.pick(7) is None  # weight 0 is drained: it takes no traffic, not even as a fallback


def test_testers_reach_the_newest_group_while_it_has_an_instance():
    upstream = upstreams.build("loan", [f"{A}*100", f"{C}*0"])

    assert {upstream.pick(user, canary=True)[0].name for user in range(1, 50)} == {"loan-v2:8002"}
    upstream.canary.instances[0].healthy = False
    assert {upstream.pick(user, canary=True)[0].name for user in range(1, 50)} == {"loan-a:8002"}


weights_lists = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=6).filter(any)


@given(weights=weights_lists, point=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_a_client_lands_in_a_group_with_a_weight(weights, point):
    chosen = choose(point, weights, lambda index: False)

    assert chosen is not None
    assert weights[chosen] > 0


@given(weights=weights_lists, point=st.floats(min_value=0, max_value=1, exclude_max=True), data=st.data())
def test_losing_a_group_moves_only_that_groups_clients(weights, point, data):
    before = choose(point, weights, lambda index: False)
    dead = data.draw(st.sampled_from([i for i, w in enumerate(weights) if w > 0]))
    asked: list[int] = []

    def unavailable(index):
        asked.append(index)
        return index == dead

    after = choose(point, weights, unavailable)

    if before != dead:
        assert after == before
        assert asked == [before]
    else:
        assert after != dead
        assert after is None or weights[after] > 0
        assert after is not None or sum(1 for w in weights if w > 0) == 1
    assert len(asked) == len(set(asked))  # each group asked at most once


@given(st.integers(min_value=1, max_value=2**63), st.text(max_size=40))
def test_a_clients_point_is_in_the_interval_and_stable(user_id, key):
    for identity in (user_id, key):
        assert 0 <= point_for(identity) < 1
        assert point_for(identity) == point_for(identity)


def test_weighted_upstreams_keep_every_instance_for_health_and_metrics():
    upstream = upstreams.build("loan", [f"stable*90={A} {B}", f"canary*10={C}"])

    assert [instance.url for instance in upstream.instances] == [A, B, C]
    assert upstreams.build("loan", [A]).groups[0].name == weighting.DEFAULT_GROUP
