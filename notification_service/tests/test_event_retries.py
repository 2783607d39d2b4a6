"""The event consumer and database errors: a dropped connection is retried, a lasting outage is logged as a loss."""

import time

import psycopg
import pytest
from django.db import connection

from notifications.models import Notification
from notifications.tasks import consume_event
from tests.conftest import message, registered

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def other_connection(**options) -> psycopg.Connection:
    """A second session on the test database, as another client of the server."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"], **options
    )


def cut_our_connection() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    with other_connection(autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 5
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the server did not end the session"
            time.sleep(0.05)


@pytest.fixture
def lock_timeout():
    """Lock waits give up after 100 ms, on this session and on any new one (a retry may reconnect)."""
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" SET lock_timeout = 100')
        cursor.execute("SET lock_timeout = 100")
    yield
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" RESET lock_timeout')
        cursor.execute("RESET lock_timeout")


def test_an_event_survives_a_dropped_database_connection(mailbox):
    cut_our_connection()

    result = consume_event.delay(message(registered(3, email="ann@example.com")))

    assert result.successful()
    assert sorted(Notification.objects.values_list("channel", "status")) == [("email", "sent"), ("in_app", "sent")]
    assert [m["To"] for m in mailbox.messages] == ["ann@example.com"]


def test_an_event_the_database_refuses_on_every_retry_is_logged_as_lost(mailbox, lock_timeout, caplog, settings):
    event = message(registered(3))
    with other_connection() as locker:
        locker.execute("LOCK TABLE notifications_recipient IN ACCESS EXCLUSIVE MODE")  # held until rollback

        result = consume_event.delay(event)

        locker.rollback()
    assert result.failed()
    retries = [r for r in caplog.records if r.getMessage().startswith("event consumer hit a database error")]
    assert len(retries) == settings.NOTIFICATION_EVENT_MAX_RETRIES
    [lost] = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert "EVENT LOST" in lost.getMessage()
    assert lost.event_id == event["event_id"]
    assert not Notification.objects.exists()
