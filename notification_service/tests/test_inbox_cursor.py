"""The inbox walked by cursor: every notification once, newest first, whatever arrives or is read meanwhile."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from common.testing import walk_by_cursor
from notifications.models import Notification
from tests.conftest import Api

pytestmark = pytest.mark.django_db

USER, OTHER = 3, 4
START = timezone.now() - timedelta(days=1)


def notify(count: int, *, user_id: int = USER, kind: str = "loan.created", moments: int = 3, at=None) -> list:
    """`count` in-app notifications, created at `at` or at `moments` distinct times (ties)."""
    rows = Notification.objects.bulk_create(
        Notification(
            event_id=uuid.uuid4(), user_id=user_id, channel="in_app", kind=kind, subject="s", body="b", status="sent"
        )
        for _ in range(count)
    )
    for position, row in enumerate(rows):
        row.created_at = at or START + timedelta(seconds=position % moments)
    Notification.objects.bulk_update(rows, ["created_at"])
    return rows


def newest_first(rows) -> list[int]:
    return [row.id for row in sorted(rows, key=lambda row: (row.created_at, row.id), reverse=True)]


def ids(pages) -> list[int]:
    return [row["id"] for page in pages for row in page["results"]]


@pytest.fixture
def inbox(api):
    return api.as_role("customer", USER)


def test_the_inbox_walks_every_notification_once_while_new_ones_arrive(inbox):
    mine = notify(13)
    notify(5, user_id=OTHER)
    arrived = []

    pages = walk_by_cursor(
        inbox, "/api/notifications/?page_size=4", between_pages=lambda n: arrived.extend(notify(1, at=timezone.now()))
    )

    assert ids(pages) == newest_first(mine)
    assert not {row.id for row in arrived} & set(ids(pages))
    assert [page["page"] for page in pages] == [1, None, None, None]


def test_reading_during_a_walk_of_the_unread_skips_no_other(inbox):
    unread = newest_first(notify(7))

    def during(pages_read: int) -> None:
        Notification.objects.filter(pk__in=[unread[0], unread[5]]).update(read_at=timezone.now())

    pages = walk_by_cursor(inbox, "/api/notifications/?unread=true&page_size=2", between_pages=during)

    assert ids(pages) == [row_id for row_id in unread if row_id != unread[5]]


def test_a_cursor_keeps_the_kind_filter(inbox):
    notify(4, kind="user.registered")
    wanted = notify(6, kind="loan.approved")

    pages = walk_by_cursor(inbox, "/api/notifications/?kind=loan.approved&page_size=4")

    assert ids(pages) == newest_first(wanted)
    assert {page["count"] for page in pages} == {6}


@pytest.mark.parametrize("cursor", ["nonsense", "WzEsMl0:forged", ""])
def test_a_bad_cursor_is_400_on_cursor(inbox, cursor):
    response = inbox.get(f"/api/notifications/?cursor={cursor}")

    assert response.status_code == 400
    assert (response.json()["error"]["code"], list(response.json()["error"]["details"])) == (
        "validation_error",
        ["cursor"],
    )


def test_another_users_cursor_shows_only_my_own_rows(inbox):
    # A cursor is a position in the ordering, not a permission: the list is still the caller's own.
    notify(3, user_id=OTHER)
    mine = notify(3)
    cursor = Api().as_role("customer", OTHER).get("/api/notifications/?page_size=1").json()["data"]["next_cursor"]

    data = inbox.get(f"/api/notifications/?cursor={cursor}").json()["data"]

    assert {row["user_id"] for row in data["results"]} <= {USER}
    assert set(ids([data])) <= {row.id for row in mine}


def test_page_numbers_stop_at_ten_thousand_rows(inbox):
    response = inbox.get("/api/notifications/?page=501")

    assert (response.status_code, list(response.json()["error"]["details"])) == (400, ["page"])
