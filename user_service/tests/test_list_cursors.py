"""The user lists walked by cursor: every row once in the list's order, whatever is added during the walk."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from common.testing import walk_by_cursor
from users.models import Approval, Role, User

pytestmark = pytest.mark.django_db

START = (timezone.now() - timedelta(hours=1)).replace(microsecond=500_000)
_numbers = itertools.count(1)


def make_users(count: int, *, role=Role.CUSTOMER, approval=Approval.APPROVED, at=None, moments: int = 3) -> list:
    """`count` users without a password (bulk, no hashing); created at `at`, else at `moments` distinct times (ties)."""
    users = User.objects.bulk_create(
        User(email=f"list{next(_numbers)}@example.com", role=role, approval=approval, password="!")
        for _ in range(count)
    )
    for position, user in enumerate(users):
        user.created_at = at or START + timedelta(seconds=position % moments)
    User.objects.bulk_update(users, ["created_at"])
    return users


def newest_first(users) -> list[int]:
    return [user.id for user in sorted(users, key=lambda user: (user.created_at, user.id), reverse=True)]


def oldest_first(users) -> list[int]:
    return [user.id for user in sorted(users, key=lambda user: (user.created_at, user.id))]


def ids(pages) -> list[int]:
    return [user["id"] for page in pages for user in page["results"]]


@pytest.fixture
def admin_api(api, admin):
    User.objects.filter(pk=admin.pk).update(created_at=START - timedelta(days=1))  # last in newest-first lists
    admin.refresh_from_db()
    return api.as_user(admin)


def test_list_users_walks_every_user_once_newest_first_while_users_sign_up(admin_api, admin):
    users = [*make_users(14), admin]
    signed_up = []

    pages = walk_by_cursor(
        admin_api,
        "/api/user/list-users?page_size=4",
        between_pages=lambda n: signed_up.extend(make_users(2, at=timezone.now())),  # before the cursor
    )

    assert ids(pages) == newest_first(users)
    assert not {user.id for user in signed_up} & set(ids(pages))
    assert [page["page"] for page in pages] == [1, None, None, None]
    assert pages[-1]["next_cursor"] is None


def test_list_users_cursor_keeps_the_filters(admin_api):
    make_users(5)
    agents = make_users(9, role=Role.AGENT)

    pages = walk_by_cursor(admin_api, "/api/user/list-users?role=agent&page_size=2")

    assert ids(pages) == newest_first(agents)
    assert {page["count"] for page in pages} == {9}


def test_list_agents_walks_the_customers_with_a_search(api, agent):
    make_users(4)
    wanted = make_users(7)
    User.objects.filter(pk__in=[user.pk for user in wanted]).update(first_name="Zelda")

    pages = walk_by_cursor(api.as_user(agent), "/api/user/list-agents?search=zeld&page_size=3")

    assert ids(pages) == newest_first(User.objects.filter(pk__in=[user.pk for user in wanted]))


def test_list_approvals_walks_oldest_first_and_a_new_signup_comes_once_at_the_end(admin_api):
    waiting = make_users(8, role=Role.AGENT, approval=Approval.PENDING)
    later = []

    def during(pages_read: int) -> None:
        if pages_read == 1:
            later.extend(make_users(1, role=Role.AGENT, approval=Approval.PENDING, at=timezone.now()))

    pages = walk_by_cursor(admin_api, "/api/user/list-approvals?page_size=3", between_pages=during)

    assert ids(pages) == [*oldest_first(waiting), later[0].id]


def test_an_agent_decided_during_the_walk_skips_no_one_else(admin_api):
    waiting = oldest_first(make_users(6, role=Role.AGENT, approval=Approval.PENDING))

    def during(pages_read: int) -> None:
        User.objects.filter(pk=waiting[1]).update(approval=Approval.APPROVED)  # on the page already read
        User.objects.filter(pk=waiting[4]).update(approval=Approval.APPROVED)  # not read yet

    pages = walk_by_cursor(admin_api, "/api/user/list-approvals?page_size=2", between_pages=during)

    assert ids(pages) == [waiting[0], waiting[1], waiting[2], waiting[3], waiting[5]]


@pytest.mark.parametrize("cursor", ["nonsense", "eyJ4IjoxfQ:forged", "A" * 600])
def test_a_bad_cursor_is_400_on_cursor(admin_api, cursor):
    response = admin_api.get(f"/api/user/list-users?cursor={cursor}")

    assert response.status_code == 400
    body = response.json()
    assert (body["success"], body["error"]["code"], list(body["error"]["details"])) == (
        False,
        "validation_error",
        ["cursor"],
    )


def test_a_cursor_of_the_newest_first_lists_does_not_fit_the_oldest_first_one(admin_api):
    make_users(3, role=Role.AGENT, approval=Approval.PENDING)
    cursor = admin_api.get("/api/user/list-users?page_size=1").json()["data"]["next_cursor"]

    response = admin_api.get(f"/api/user/list-approvals?cursor={cursor}")

    assert (response.status_code, list(response.json()["error"]["details"])) == (400, ["cursor"])


def test_page_numbers_stop_at_ten_thousand_rows(admin_api):
    assert admin_api.get("/api/user/list-users?page=500").status_code == 200
    response = admin_api.get("/api/user/list-users?page=501")

    assert (response.status_code, list(response.json()["error"]["details"])) == (400, ["page"])


def test_the_openapi_document_names_the_cursor(api):
    document = api.get("/openapi.json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    for path in ("/api/user/list-users", "/api/user/list-agents", "/api/user/list-approvals"):
        assert {"page", "page_size", "cursor"} <= {p["name"] for p in document["paths"][path]["get"]["parameters"]}
