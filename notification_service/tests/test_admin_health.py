"""The admin index shows notification_service's health at a glance: database, broker, failed notifications."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from common.admin_health import checks
from common.admin_health.checks import service_health
from common.admin_health.testing import closed_broker_url, health_panel
from notifications import tasks
from notifications.models import Notification

pytestmark = pytest.mark.django_db
FAILED_LIST = "/admin/notifications/notification/?status__exact=failed"


def notifications(count: int, **fields) -> None:
    Notification.objects.bulk_create(
        Notification(user_id=3, channel="email", kind="loan.approved", subject="s", body="b", **fields)
        for _ in range(count)
    )


@pytest.fixture
def backlog() -> None:
    notifications(2, status="failed", attempts=3, last_error="gave up after 2 retries")
    notifications(3, status="pending", attempts=0)
    notifications(1, status="pending", attempts=2, last_error="451 try later")
    notifications(4, status="sent", attempts=1)


def panel_of(client: Client) -> dict:
    response = client.get("/admin/")
    assert response.status_code == 200
    return health_panel(response.content)


def test_staff_see_the_failed_and_waiting_notifications_with_a_link_to_the_failed_ones(operator, backlog):
    panel = panel_of(operator)

    assert list(panel) == ["database", "broker", "notifications", "dead_letters"]  # no outbox: it sends no events
    line = panel["notifications"]
    assert line["state"] == "warn"
    assert line["text"] == "Notifications 2 failed 3 pending, 1 retrying failed notifications"
    assert line["link"] == FAILED_LIST
    listed = operator.get(line["link"]).context["cl"].result_list
    assert [n.status for n in listed] == ["failed", "failed"]


def test_without_failed_notifications_the_line_is_ok(operator):
    notifications(2, status="pending", attempts=0)
    notifications(5, status="sent", attempts=1)

    line = panel_of(operator)["notifications"]

    assert line["state"] == "ok"
    assert line["text"].startswith("Notifications OK 0 failed, 2 pending, 0 retrying")


def test_the_panel_is_a_few_bounded_queries(backlog, django_assert_num_queries):
    with django_assert_num_queries(5):  # SELECT 1, then one capped count each: failed, pending, retrying, dead letters
        health = service_health()

    assert [check.state for check in health["checks"]] == ["ok", "ok", "warn", "ok"]


def test_dead_letters_to_replay_are_a_warning_linked_to_their_list(operator):
    for number in range(2):
        tasks.dead_letter(f"unreadable {number}", reason="rejected", error="not an envelope")

    line = panel_of(operator)["dead_letters"]

    assert line["state"] == "warn"
    assert line["text"] == "Dead letters 2 to replay replay them once their cause is fixed dead letters to replay"
    assert line["link"] == "/admin/notifications/deadletter/?status__exact=dead"
    assert len(operator.get(line["link"]).context["cl"].result_list) == 2


def test_a_broker_that_is_down_shows_down_without_holding_the_page(operator, settings):
    settings.CELERY_BROKER_URL = closed_broker_url()

    started = time.perf_counter()
    panel = panel_of(operator)

    assert time.perf_counter() - started < checks.BROKER_TIMEOUT_SECONDS
    assert (panel["broker"]["state"], panel["database"]["state"]) == ("down", "ok")
    assert panel["broker"]["text"].startswith("Broker DOWN redis:")


def test_a_signed_in_user_who_is_not_staff_gets_the_sign_in_page_not_the_panel():
    client = Client()
    client.force_login(get_user_model().objects.create(username="someone"))

    response = client.get("/admin/", follow=True)

    assert response.redirect_chain[0][0].startswith("/admin/login/")
    assert health_panel(response.content) is None
