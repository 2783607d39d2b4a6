"""The event consumer and database errors: a dropped connection is retried, a lasting outage is dead-lettered."""

import io
import logging
import time

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from notifications.models import DeadLetter, Notification
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


def test_an_event_the_database_refuses_on_every_retry_becomes_exactly_one_dead_letter(
    mailbox, lock_timeout, caplog, settings
):
    event = message(registered(3))
    with other_connection() as locker:
        locker.execute("LOCK TABLE notifications_recipient IN ACCESS EXCLUSIVE MODE")  # held until rollback

        result = consume_event.delay(event)

        locker.rollback()
    assert result.successful()  # acknowledged only once the dead letter is stored
    retries = [r for r in caplog.records if r.getMessage().startswith("event consumer hit a database error")]
    assert len(retries) == settings.NOTIFICATION_EVENT_MAX_RETRIES
    assert not Notification.objects.exists()
    [letter] = DeadLetter.objects.all()
    assert (letter.reason, letter.status, letter.failures) == ("database_unavailable", "dead", 1)
    assert (str(letter.event_id), letter.event_name, letter.correlation_id) == (
        event["event_id"],
        "user.registered",
        "corr-1",
    )
    assert letter.message == event
    assert letter.first_failed_at < letter.last_failed_at  # from the first failed attempt to the last
    assert "lock timeout" in letter.error


class ReleaseOnLog(logging.Handler):
    """Runs `end_outage` when the sixth record whose message starts with `prefix` is logged."""

    def __init__(self, prefix: str, end_outage) -> None:
        super().__init__()
        self.prefix, self.end_outage, self.seen = prefix, end_outage, 0

    def emit(self, record) -> None:
        if record.getMessage().startswith(self.prefix):
            self.seen += 1
            if self.seen == 6:  # past Celery's default of 3 retries
                self.end_outage()


def test_a_dead_letter_waits_out_the_database_and_is_stored_once_it_answers(mailbox, lock_timeout, caplog):
    # The database is what is down: the dead letter cannot be written at that moment either.
    event = message(registered(3))
    logger = logging.getLogger("lms.notifications")
    with other_connection() as locker:
        locker.execute("LOCK TABLE notifications_recipient, notifications_deadletter IN ACCESS EXCLUSIVE MODE")
        release = ReleaseOnLog("dead letter not stored yet", locker.rollback)  # the sixth failed store ends it
        logger.addHandler(release)
        try:
            consume_event.delay(event)
        finally:
            logger.removeHandler(release)
            locker.rollback()

    assert release.seen == 6  # retried past every failure, without a limit
    [letter] = DeadLetter.objects.all()
    assert (str(letter.event_id), letter.reason, letter.failures) == (event["event_id"], "database_unavailable", 1)


def test_the_replay_of_a_database_dead_letter_notifies_once(mailbox, lock_timeout):
    event = message(registered(3, email="ann@example.com"))
    with other_connection() as locker:
        locker.execute("LOCK TABLE notifications_recipient IN ACCESS EXCLUSIVE MODE")
        consume_event.delay(event)
        locker.rollback()
    letter = DeadLetter.objects.get()

    call_command("replay_dead_letters", "--id", str(letter.pk), stdout=io.StringIO())
    call_command("replay_dead_letters", "--all", stdout=io.StringIO())

    assert sorted(Notification.objects.values_list("channel", "status")) == [("email", "sent"), ("in_app", "sent")]
    assert [m["To"] for m in mailbox.messages] == ["ann@example.com"]
    letter.refresh_from_db()
    assert (letter.status, letter.replays) == ("replayed", 1)
