"""Lists are pages: ?page from 1 up to a depth, ?page_size clamped to 100, ?cursor (keyset) at any depth.

A page past the end is empty; bad values, a page past MAX_PAGE_DEPTH and a cursor the service did
not make for this list are 400s naming the parameter.
"""

import base64
import json
import re
import uuid
from datetime import timedelta
from functools import cmp_to_key

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common import events
from common.idempotency.models import IdempotencyKey
from common.outbox.models import OutboxMessage
from common.outbox.publisher import publish
from common.pagination import ordering_keys
from common.testing import walk_by_cursor
from tests.urls import NUMBERS

pytestmark = pytest.mark.django_db

START = timezone.now().replace(microsecond=123456)


def make_rows(
    count: int, *, first: int = 1, times: int | None = None, fingerprints: str = "abc", status: str = "done"
) -> list:
    """`count` rows keyed first, first + 1... in id order; created_at takes `times` distinct values (ties)."""
    rows = [
        IdempotencyKey(
            scope=NUMBERS,
            key=str(first + number - 1),
            fingerprint=fingerprints[number % len(fingerprints)],
            status=status,
            lease=uuid.uuid4(),
            created_at=START + timedelta(microseconds=number % (times or count + 1)),
            locked_at=START,
        )
        for number in range(1, count + 1)
    ]
    return IdempotencyKey.objects.bulk_create(rows)


@pytest.fixture
def numbers():
    return make_rows(45)


def page(api, query: str = "", path: str = "/numbers") -> dict:
    response = api.get(f"{path}?{query}")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def error_fields(response) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    return error["details"]


def ids(pages: list[dict]) -> list:
    return [row for data in pages for row in data["results"]]


def in_order(rows: list, ordering: list[str]) -> list[int]:
    """The ids of `rows` as `ordering` (field names, "-" descending) then the id in the last one's direction."""
    ordering = [*ordering, ("-" if ordering[-1].startswith("-") else "") + "id"]

    def compare(left, right) -> int:
        for name in ordering:
            a, b = getattr(left, name.lstrip("-")), getattr(right, name.lstrip("-"))
            if a != b:
                return (-1 if a < b else 1) * (-1 if name.startswith("-") else 1)
        return 0

    return [row.id for row in sorted(rows, key=cmp_to_key(compare))]


# ----------------------------------------------------------------------------- page numbers


def test_the_first_page_has_twenty_by_default(api, numbers):
    data = page(api)

    assert (data["count"], data["page"], data["page_size"]) == (45, 1, 20)
    assert data["results"] == list(range(1, 21))
    assert (data["next"], data["previous"]) == (2, None)
    assert data["next_cursor"] is not None


def test_the_last_page_is_partial_and_has_no_next(api, numbers):
    data = page(api, "page=3&page_size=20")

    assert data["results"] == [41, 42, 43, 44, 45]
    assert (data["next"], data["previous"], data["next_cursor"]) == (None, 2, None)


def test_a_page_that_ends_exactly_at_the_end_has_no_next(api, numbers):
    data = page(api, "page=3&page_size=15")

    assert (data["results"][-1], data["next"], data["next_cursor"]) == (45, None, None)


def test_a_page_past_the_end_is_empty_not_an_error(api, numbers):
    data = page(api, "page=9")

    assert (data["count"], data["results"], data["next"], data["previous"]) == (45, [], None, 8)
    assert data["next_cursor"] is None


@pytest.mark.parametrize(("asked", "given"), [("100", 100), ("101", 100), ("500", 100), ("1", 1)])
def test_the_page_size_is_clamped_to_one_hundred(api, numbers, asked, given):
    data = page(api, f"page_size={asked}")

    assert data["page_size"] == given
    assert len(data["results"]) == min(given, 45)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=x", "page"),
        ("page=-1", "page"),
        ("page_size=0", "page_size"),
        ("page_size=", "page_size"),
    ],
)
def test_bad_page_parameters_are_400_naming_the_parameter(api, query, field):
    assert list(error_fields(api.get(f"/numbers?{query}"))) == [field]


def test_a_queryset_page_costs_two_queries_whatever_its_size(api, django_assert_num_queries):
    with transaction.atomic():
        for user_id in range(25):
            publish(
                events.UserRegistered(
                    user_id=user_id, email=f"u{user_id}@example.com", role="customer", is_approved=True
                )
            )

    with django_assert_num_queries(2):
        data = api.get("/outbox-page?page=2&page_size=10").json()["data"]

    assert (data["count"], len(data["results"]), data["next"], data["previous"]) == (25, 10, 3, 1)


def test_an_empty_list_is_one_empty_page(api):
    data = api.get("/outbox-page").json()["data"]

    assert data == {
        "count": 0,
        "page": 1,
        "page_size": 20,
        "next": None,
        "previous": None,
        "next_cursor": None,
        "results": [],
    }


# ----------------------------------------------------------------------------- the page depth


@pytest.mark.parametrize(
    ("query", "allowed"),
    [
        ("page=500", True),  # rows 9,981 - 10,000
        ("page=501", False),
        ("page=100&page_size=100", True),
        ("page=101&page_size=100", False),
        ("page=101&page_size=1000", False),  # the size is clamped to 100 first
        ("page=4611686018427387904", False),  # an OFFSET beyond 64 bits: a 400, never a database error
    ],
)
def test_page_numbers_stop_at_ten_thousand_rows_and_point_at_the_cursor(api, numbers, query, allowed):
    response = api.get(f"/numbers?{query}")

    if allowed:
        assert response.status_code == 200
        assert response.json()["data"]["results"] == []
    else:
        [message] = error_fields(response)["page"]
        assert "10000" in message
        assert "cursor" in message


def test_the_page_depth_is_a_setting(api, numbers, settings):
    settings.MAX_PAGE_DEPTH = 30

    assert api.get("/numbers?page=2&page_size=15").status_code == 200
    assert list(error_fields(api.get("/numbers?page=4&page_size=10"))) == ["page"]


def test_next_is_null_at_the_depth_but_the_cursor_goes_on(api, numbers, settings):
    settings.MAX_PAGE_DEPTH = 20

    data = page(api, "page=2&page_size=10")
    after = page(api, f"cursor={data['next_cursor']}&page_size=10")

    assert (data["results"][-1], data["next"]) == (20, None)
    assert after["results"] == list(range(21, 31))


# ----------------------------------------------------------------------------- cursors


def test_a_cursor_page_follows_the_page_it_came_from(api, numbers):
    first = page(api, "page_size=10")
    second = page(api, f"cursor={first['next_cursor']}&page_size=10")

    assert second["results"] == list(range(11, 21))
    assert (second["count"], second["page"], second["page_size"]) == (45, None, 10)
    assert (second["next"], second["previous"]) == (None, None)
    assert second["next_cursor"] is not None


def test_a_page_number_page_and_a_cursor_page_agree(api, numbers):
    third_by_number = page(api, "page=3&page_size=7")
    second = page(api, "page=2&page_size=7")

    assert page(api, f"cursor={second['next_cursor']}&page_size=7")["results"] == third_by_number["results"]


@pytest.mark.parametrize("size", [1, 7, 15, 45, 100])
def test_walking_by_cursor_yields_every_row_once_in_order(api, numbers, size):
    pages = walk_by_cursor(api, f"/numbers?page_size={size}")

    assert ids(pages) == list(range(1, 46))
    assert pages[-1]["next_cursor"] is None
    assert {data["count"] for data in pages} == {45}


@pytest.mark.parametrize("ordering", ["newest", "oldest", "fingerprint", "mixed", "scope-key"])
def test_ties_in_the_ordering_are_broken_by_the_id(api, ordering):
    # 40 rows, created at only 3 distinct moments, with 3 distinct fingerprints: every page boundary is a tie.
    from tests.urls import KEY_ORDERINGS

    rows = make_rows(40, times=3)

    pages = walk_by_cursor(api, f"/keys?ordering={ordering}&page_size=6")

    assert ids(pages) == in_order(rows, KEY_ORDERINGS[ordering])


def test_rows_added_and_removed_during_a_walk_neither_repeat_nor_skip_the_others(api):
    rows = make_rows(30, times=4)
    before = in_order(rows, ["-created_at"])
    gone = set(before[14:16])

    def change(pages_read: int) -> None:
        if pages_read == 1:
            # Newer rows land before the cursor (not in this walk); older ones after it (read once, in place).
            newer = make_rows(5, first=100)
            IdempotencyKey.objects.filter(pk__in=[row.pk for row in newer]).update(created_at=START + timedelta(1))
            older = make_rows(3, first=200)
            IdempotencyKey.objects.filter(pk__in=[row.pk for row in older]).update(created_at=START - timedelta(1))
        if pages_read == 2:
            IdempotencyKey.objects.filter(pk__in=gone).delete()  # later rows: they simply do not come

    pages = walk_by_cursor(api, "/keys?ordering=newest&page_size=7", between_pages=change)

    seen = ids(pages)
    assert len(seen) == len(set(seen))
    older_ids = set(IdempotencyKey.objects.filter(created_at__lt=START).values_list("id", flat=True))
    assert [row for row in seen if row not in older_ids] == [row for row in before if row not in gone]
    assert set(seen[-3:]) == older_ids  # the older rows came last, once


def test_a_cursor_works_with_the_filters_of_the_list(api):
    done = make_rows(12, status="done")
    make_rows(9, first=100, status="running")

    pages = walk_by_cursor(api, "/keys?ordering=oldest&status=done&page_size=5")

    assert ids(pages) == in_order(done, ["created_at"])
    assert {data["count"] for data in pages} == {12}


def test_a_cursor_page_costs_two_queries_and_no_offset(api, numbers):
    cursor = page(api, "page=3&page_size=10")["next_cursor"]

    with CaptureQueriesContext(connection) as queries:
        data = page(api, f"cursor={cursor}&page_size=10")

    assert len(queries) == 2  # the keyset slice and the COUNT
    assert data["results"] == list(range(31, 41))
    assert not any("OFFSET" in query["sql"].upper() for query in queries.captured_queries)


def test_a_cursor_is_opaque_url_safe_text(api, numbers):
    cursor = page(api, "page_size=5")["next_cursor"]

    assert re.fullmatch(r"[A-Za-z0-9_\-:]+", cursor)
    assert len(cursor) < 200
    assert page(api, f"cursor={cursor}")["results"][0] == 6  # no URL-encoding needed


def test_the_uuid_keyed_outbox_walks_by_cursor_too(api):
    with transaction.atomic():
        for user_id in range(13):
            publish(
                events.UserRegistered(user_id=user_id, email=f"u{user_id}@e.com", role="customer", is_approved=True)
            )
    expected = [str(row.event_id) for row in OutboxMessage.objects.order_by("created_at", "event_id")]

    assert ids(walk_by_cursor(api, "/outbox-page?page_size=4")) == expected


def _forged(values) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
    return f"{payload}:{'A' * 43}"


def _tampered(cursor: str) -> str:
    payload, signature = cursor.split(":")
    return f"{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}:{signature}"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda good: "garbage", id="garbage"),
        pytest.param(lambda good: "", id="empty"),
        pytest.param(lambda good: good[:-3], id="truncated"),
        pytest.param(_tampered, id="payload-edited"),
        pytest.param(lambda good: _forged([1]), id="forged-unsigned"),
        pytest.param(lambda good: good + "A" * 600, id="too-long"),
        pytest.param(lambda good: "%00" + good, id="nul-character"),
    ],
)
def test_a_cursor_not_made_by_the_service_is_400_on_cursor(api, numbers, make):
    good = page(api, "page_size=5")["next_cursor"]

    details = error_fields(api.get(f"/numbers?cursor={make(good)}"))

    assert list(details) == ["cursor"]


def test_a_cursor_of_another_ordering_or_list_is_400(api, numbers):
    newest = page(api, "ordering=newest&page_size=5", path="/keys")["next_cursor"]
    by_id = page(api, "page_size=5")["next_cursor"]

    assert list(error_fields(api.get(f"/keys?ordering=oldest&cursor={newest}"))) == ["cursor"]
    assert list(error_fields(api.get(f"/outbox-page?cursor={by_id}"))) == ["cursor"]
    assert page(api, f"ordering=newest&cursor={newest}", path="/keys")["results"]  # where it belongs it works


def test_a_cursor_and_a_page_number_together_are_400(api, numbers):
    cursor = page(api, "page_size=5")["next_cursor"]

    assert list(error_fields(api.get(f"/numbers?page=2&cursor={cursor}"))) == ["cursor"]


# ----------------------------------------------------------------------------- the ordering


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ([], [("id", False)]),  # unordered: by id
        (["-created_at"], [("created_at", True), ("id", True)]),
        (["fingerprint", "-created_at"], [("fingerprint", False), ("created_at", True), ("id", True)]),
        (["-pk", "created_at"], [("id", True)]),  # nothing after a unique column decides
        (["created_at", "id"], [("created_at", False), ("id", False)]),
    ],
)
def test_the_ordering_always_ends_with_a_unique_column(ordering, expected):
    keys = ordering_keys(IdempotencyKey.objects.order_by(*ordering))

    assert [(field.name, descending) for field, descending in keys] == expected


def test_the_models_own_ordering_is_used_when_the_queryset_has_none():
    keys = ordering_keys(OutboxMessage.objects.all())

    assert [(field.name, descending) for field, descending in keys] == [("created_at", False), ("event_id", False)]


@pytest.mark.parametrize(
    "ordering", ["?", "response_status", F("created_at").desc()], ids=["random", "nullable", "expression"]
)
def test_orderings_a_cursor_cannot_follow_are_a_programming_error(ordering):
    with pytest.raises(TypeError):
        ordering_keys(IdempotencyKey.objects.order_by(ordering))
