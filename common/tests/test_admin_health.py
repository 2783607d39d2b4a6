"""The health panel of the admin index (common.admin_health): what each check says, how fast, and for whom."""

import socket
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection, transaction
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from common.admin_health import checks
from common.admin_health.checks import Check, health_check, service_health
from common.admin_health.testing import health_panel, outbox_backlog
from tests.local_servers import free_port

pytestmark = pytest.mark.django_db

PANEL = Template("{% load service_health %}<main>{% service_health_panel %}</main>")


@health_check("extra", "Extra")
def extra_check() -> Check:
    """A service's own check, as ADMIN_HEALTH_CHECKS names one."""
    return Check(checks.OK, "OK", "all good")


@pytest.fixture
def silent_port():
    """A port that takes connections and never answers a word: a hung broker."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def render_for(user) -> str:
    request = RequestFactory().get("/admin/")
    request.user = user
    return PANEL.render(Context({"request": request}))


def timed(check):
    started = time.perf_counter()
    result = check()
    return result, time.perf_counter() - started


# --- the outbox backlog ---------------------------------------------------------------------------


def test_sent_rows_are_no_backlog():
    outbox_backlog(3, age=timedelta(hours=1), sent=True)

    # No admin in this project: no link to the outbox's list.
    assert checks.outbox() == Check("ok", "OK", "0 unsent", name="outbox", label="Outbox")


def test_a_fresh_backlog_is_counted_and_still_ok():
    outbox_backlog(2, age=timedelta(seconds=20))

    result = checks.outbox()

    assert result.state == "ok"
    assert result.summary in ("2 unsent, oldest 20 s", "2 unsent, oldest 21 s")


def test_a_backlog_older_than_a_minute_warns_with_its_count_and_oldest_age():
    outbox_backlog(2, age=timedelta(minutes=3, seconds=5))
    outbox_backlog(1, age=timedelta(seconds=5))
    outbox_backlog(4, age=timedelta(hours=2), sent=True)

    result = checks.outbox()

    assert (result.state, result.summary) == ("warn", "3 unsent, oldest 3 min")
    assert "relay" in result.detail


def test_the_count_stops_at_the_cap(monkeypatch):
    monkeypatch.setattr(checks, "COUNT_CAP", 3)
    outbox_backlog(5, age=timedelta(minutes=2))

    assert checks.outbox().summary == "3+ unsent, oldest 2 min"


def test_the_backlog_costs_one_query(django_assert_num_queries):
    outbox_backlog(3, age=timedelta(minutes=2))

    with django_assert_num_queries(1):
        checks.outbox()


@pytest.mark.postgres
def test_the_backlog_is_read_from_the_partial_index_of_unsent_rows():
    outbox_backlog(3, age=timedelta(minutes=2))
    with CaptureQueriesContext(connection) as queries:
        checks.outbox()
    [query] = queries.captured_queries

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table of three rows would be read whole anyway
        cursor.execute(f"EXPLAIN {query['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "outbox_unsent_idx" in plan
    assert "LIMIT 1001" in query["sql"]


# --- database and broker --------------------------------------------------------------------------


def test_the_database_is_ok_with_its_latency():
    result = checks.database()

    assert (result.name, result.state, result.summary) == ("database", "ok", "OK")
    assert result.detail.endswith(" ms")


def test_no_broker_configured_is_a_warning(settings):
    settings.CELERY_BROKER_URL = ""

    assert (checks.broker().state, checks.broker().summary) == ("warn", "NOT CONFIGURED")


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_broker_that_refuses_is_down_at_once(settings, scheme):
    settings.CELERY_BROKER_URL = f"{scheme}://127.0.0.1:{free_port()}/0"

    result, took = timed(checks.broker)

    assert (result.state, result.summary) == ("down", "DOWN")
    assert result.detail.startswith(f"{scheme}: ")
    assert str(free_port()) not in result.detail  # the scheme is shown, not the URL
    assert took < 0.5  # no retry, no sleep between attempts


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_broker_that_never_answers_is_down_after_the_timeout(settings, silent_port, scheme):
    settings.CELERY_BROKER_URL = f"{scheme}://127.0.0.1:{silent_port}/0"

    result, took = timed(checks.broker)

    assert result.state == "down"
    assert took < checks.BROKER_TIMEOUT_SECONDS + 0.5


def test_readiness_gives_up_on_a_redis_that_never_answers(api, settings, silent_port):
    # Redis's client has no timeouts of its own: without the probe's, this request would never end.
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_port}/0"

    started = time.perf_counter()
    response = api.get("/health/ready")

    assert time.perf_counter() - started < 4
    assert response.json()["checks"]["broker"]["status"] == "down"


@pytest.mark.broker
def test_a_broker_that_answers_is_ok(settings, broker_url):
    settings.CELERY_BROKER_URL = broker_url

    result = checks.broker()

    assert (result.state, result.summary) == ("ok", "OK")
    assert result.detail.startswith("redis, ")


# --- the panel ------------------------------------------------------------------------------------


def test_a_check_that_raises_is_shown_down_under_its_name():
    @health_check("flaky", "Flaky")
    def flaky() -> Check:
        raise RuntimeError("boom")

    assert flaky() == Check("down", "DOWN", "the check failed: RuntimeError", name="flaky", label="Flaky")


def test_the_panel_runs_database_broker_outbox_then_the_services_own_checks(settings):
    settings.ADMIN_HEALTH_CHECKS = ["tests.test_admin_health.extra_check"]

    health = service_health()

    assert health["service"] == "common_tests"
    assert [check.name for check in health["checks"]] == ["database", "broker", "outbox", "extra"]
    assert health["took_ms"] >= 0


def test_staff_see_the_panel_with_one_line_per_check(settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    outbox_backlog(2, age=timedelta(minutes=5))

    html = render_for(User(username="staff", is_staff=True, is_active=True))

    assert '<section id="service-health"' in html
    assert 'class="service-health-check service-health-down"' in html
    panel = health_panel(html)
    states = {name: line["state"] for name, line in panel.items()}
    assert states == {"database": "ok", "broker": "down", "outbox": "warn"}
    assert panel["database"]["text"].startswith("Database OK")
    assert panel["broker"]["text"].startswith("Broker DOWN redis: OperationalError")
    assert panel["outbox"]["text"].startswith("Outbox 2 unsent, oldest 5 min")


@pytest.mark.parametrize(
    "user",
    [AnonymousUser(), User(username="customer", is_active=True), User(username="gone", is_staff=True, is_active=False)],
    ids=["anonymous", "not-staff", "inactive-staff"],
)
def test_nobody_but_active_staff_sees_it_and_no_check_runs(user, django_assert_num_queries):
    with django_assert_num_queries(0):
        html = render_for(user)

    assert "service-health" not in html
    assert health_panel(html) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (7200, "2 h"), (86_400 * 3 + 5, "3 d"), (-4, "0 s")],
)
def test_ages_are_shown_in_their_largest_whole_unit(seconds, text):
    assert checks.age_text(seconds) == text
