"""The admin index shows user_service's health at a glance: database, broker, and the outbox's backlog."""

import time
from datetime import timedelta

import pytest
from django.test import Client

from common.admin_health import checks
from common.admin_health.testing import closed_broker_url, health_panel, outbox_backlog
from tests.factories import UserFactory
from users.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def panel_of(client: Client) -> dict:
    response = client.get("/admin/")
    assert response.status_code == 200
    return health_panel(response.content)


def test_staff_see_database_broker_and_the_outbox_backlog(site):
    outbox_backlog(3, age=timedelta(minutes=4, seconds=10))
    outbox_backlog(1, age=timedelta(seconds=5))
    outbox_backlog(5, age=timedelta(hours=1), sent=True)

    panel = panel_of(site)

    assert list(panel) == ["database", "broker", "outbox"]
    assert (panel["database"]["state"], panel["broker"]["state"]) == ("ok", "ok")
    assert panel["database"]["text"].startswith("Database OK")
    assert panel["outbox"]["state"] == "warn"  # waiting over a minute: the relay or the broker is stuck
    assert "4 unsent, oldest 4 min" in panel["outbox"]["text"]
    assert panel["outbox"]["link"] == "/admin/outbox/outboxmessage/?sent_at__isempty=1"
    assert site.get(panel["outbox"]["link"]).context["cl"].result_count == 4


def test_no_backlog_is_ok(site):
    outbox_backlog(2, age=timedelta(minutes=10), sent=True)

    outbox = panel_of(site)["outbox"]

    assert outbox["state"] == "ok"
    assert outbox["text"].startswith("Outbox OK 0 unsent")


def test_a_broker_that_is_down_shows_down_without_holding_the_page(site, settings):
    settings.CELERY_BROKER_URL = closed_broker_url()

    started = time.perf_counter()
    panel = panel_of(site)

    assert time.perf_counter() - started < checks.BROKER_TIMEOUT_SECONDS
    assert panel["broker"]["state"] == "down"
    assert panel["broker"]["text"].startswith("Broker DOWN redis: OperationalError")
    assert panel["database"]["state"] == "ok"


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.AGENT])
def test_users_who_are_not_staff_get_the_sign_in_page_not_the_panel(role):
    client = Client()
    client.force_login(UserFactory(role=role))

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert health_panel(client.get(response["Location"]).content) is None


def test_anonymous_visitors_do_not_see_it_either():
    response = Client().get("/admin/", follow=True)

    assert response.redirect_chain[0][0].startswith("/admin/login/")
    assert health_panel(response.content) is None
