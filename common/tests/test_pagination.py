"""Lists are pages: ?page from 1, ?page_size clamped to 100, a page past the end is empty, bad values are 400."""

import pytest
from django.db import transaction

from common import events
from common.outbox.publisher import publish

pytestmark = pytest.mark.django_db


def page(api, query: str = "") -> dict:
    response = api.get(f"/numbers?{query}")
    assert response.status_code == 200
    return response.json()["data"]


def test_the_first_page_has_twenty_by_default(api):
    data = page(api)

    assert (data["count"], data["page"], data["page_size"]) == (45, 1, 20)
    assert data["results"] == list(range(1, 21))
    assert (data["next"], data["previous"]) == (2, None)


def test_the_last_page_is_partial_and_has_no_next(api):
    data = page(api, "page=3&page_size=20")

    assert data["results"] == [41, 42, 43, 44, 45]
    assert (data["next"], data["previous"]) == (None, 2)


def test_a_page_that_ends_exactly_at_the_end_has_no_next(api):
    data = page(api, "page=3&page_size=15")

    assert (data["results"][-1], data["next"]) == (45, None)


def test_a_page_past_the_end_is_empty_not_an_error(api):
    data = page(api, "page=9")

    assert (data["count"], data["results"], data["next"], data["previous"]) == (45, [], None, 8)


@pytest.mark.parametrize(("asked", "given"), [("100", 100), ("101", 100), ("500", 100), ("1", 1)])
def test_the_page_size_is_clamped_to_one_hundred(api, asked, given):
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
    response = api.get(f"/numbers?{query}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["details"]) == [field]


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


@pytest.mark.parametrize("page_number", [2**62, 10**17, 10**30])
def test_a_page_far_past_any_offset_the_database_takes_is_empty_too(api, page_number):
    # The slice would be an OFFSET beyond 64 bits: a database error, never a 500 for the client.
    response = api.get(f"/outbox-page?page={page_number}")

    assert response.status_code == 200
    assert response.json()["data"]["results"] == []


def test_an_empty_list_is_one_empty_page(api):
    data = api.get("/outbox-page").json()["data"]

    assert data == {"count": 0, "page": 1, "page_size": 20, "next": None, "previous": None, "results": []}
