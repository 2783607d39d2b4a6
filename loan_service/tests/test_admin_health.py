"""The admin index shows loan_service's health at a glance: database, broker, and the outbox's backlog."""

import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from common.admin_health import checks
from common.admin_health.testing import closed_broker_url, health_panel, outbox_backlog

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Client:
    """An admin signed in to the Django admin (the row user_service's sign-in would mirror)."""
    user = get_user_model().objects.create(username="admin-1", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user, backend="common.admin_sso.UserServiceAdminBackend")
    return client


def panel_of(client: Client) -> dict:
    response = client.get("/admin/")
    assert response.status_code == 200
    return health_panel(response.content)


def test_staff_see_database_broker_and_the_outbox_backlog(operator):
    outbox_backlog(2, age=timedelta(minutes=3, seconds=30))
    outbox_backlog(3, age=timedelta(days=1), sent=True)

    panel = panel_of(operator)

    assert list(panel) == ["database", "broker", "outbox"]
    assert (panel["database"]["state"], panel["broker"]["state"]) == ("ok", "ok")
    assert panel["broker"]["text"].startswith("Broker OK")
    assert panel["outbox"]["state"] == "warn"
    assert "2 unsent, oldest 3 min" in panel["outbox"]["text"]
    assert operator.get(panel["outbox"]["link"]).context["cl"].result_count == 2


def test_a_backlog_the_relay_is_still_sending_is_ok(operator):
    outbox_backlog(1, age=timedelta(seconds=2))

    outbox = panel_of(operator)["outbox"]

    assert outbox["state"] == "ok"
    assert "1 unsent, oldest" in outbox["text"]


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
