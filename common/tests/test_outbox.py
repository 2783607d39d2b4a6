"""The transactional outbox: written with the change or not at all, relayed once, nothing lost without a broker."""

import os
import signal
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from celery import Celery
from django.core.management import call_command
from django.db import connection, transaction

from common import events
from common.correlation import correlation_scope
from common.events import EVENT_TASK_NAME
from common.outbox.models import OutboxMessage
from common.outbox.publisher import OutsideTransaction, publish, relay_pending
from tests.conftest import drain_events
from tests.local_servers import free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def registered(user_id: int = 1) -> events.UserRegistered:
    return events.UserRegistered(user_id=user_id, email=f"u{user_id}@example.com", role="customer", is_approved=True)


def publish_committed(count: int) -> list[events.Envelope]:
    with transaction.atomic():
        return [publish(registered(user_id)) for user_id in range(count)]


@pytest.fixture
def celery_app():
    """Celery apps on a given broker URL, closed after the test."""
    apps: list[Celery] = []

    def make(url: str) -> Celery:
        app = Celery("outbox-test", broker=url, set_as_current=False)
        app.conf.broker_connection_timeout = 1
        app.conf.broker_connection_retry = False
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def down_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def unsent() -> int:
    return OutboxMessage.objects.filter(sent_at__isnull=True).count()


def test_publish_outside_a_transaction_is_refused():
    with pytest.raises(OutsideTransaction):
        publish(registered())

    assert not OutboxMessage.objects.exists()


def test_a_rolled_back_change_leaves_no_event():
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 - the block is the transaction
        publish(registered())
        raise RuntimeError("the change failed")

    assert not OutboxMessage.objects.exists()


def test_a_rolled_back_savepoint_takes_its_event_with_it():
    with transaction.atomic():
        kept = publish(registered(1))
        with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 - the inner block is the savepoint
            publish(registered(2))
            raise RuntimeError("the inner change failed")

    assert list(OutboxMessage.objects.values_list("event_id", flat=True)) == [kept.event_id]


def test_a_committed_change_leaves_exactly_one_event_with_its_envelope():
    with correlation_scope("corr-7"), transaction.atomic():
        envelope = publish(registered())

    row = OutboxMessage.objects.get()
    assert (row.event_id, row.name, row.sent_at, row.attempts) == (envelope.event_id, "user.registered", None, 0)
    assert row.message == envelope.to_message()
    assert row.message["correlation_id"] == "corr-7"
    assert events.parse_message(row.message)[1] == registered()


def test_with_the_broker_down_nothing_is_lost_and_the_failure_is_recorded(celery_app, down_url):
    publish_committed(3)
    started = time.monotonic()

    sent = relay_pending(celery_app(down_url))

    assert time.monotonic() - started < 10  # fails fast, no hang
    assert sent == 0
    rows = list(OutboxMessage.objects.order_by("created_at"))
    assert len(rows) == 3
    assert all(row.sent_at is None for row in rows)
    assert rows[0].attempts == 1
    assert "Error" in rows[0].last_error


def test_each_pass_while_the_broker_is_down_counts_an_attempt(celery_app, down_url):
    publish_committed(2)
    app = celery_app(down_url)

    relay_pending(app)
    relay_pending(app)

    oldest = OutboxMessage.objects.order_by("created_at").first()
    assert (oldest.attempts, unsent()) == (2, 2)


@pytest.mark.broker
def test_with_the_broker_up_each_row_is_sent_once_and_marked(celery_app, broker):
    envelopes = publish_committed(5)
    app = celery_app(broker)

    first, second = relay_pending(app), relay_pending(app)

    assert (first, second) == (5, 0)
    assert unsent() == 0
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}
    messages = drain_events(broker)
    assert sorted(m["id"] for m in messages) == sorted(str(e.event_id) for e in envelopes)
    assert {m["task"] for m in messages} == {EVENT_TASK_NAME}
    by_id = {m["id"]: m["body"] for m in messages}
    for envelope in envelopes:
        args, kwargs, _ = by_id[str(envelope.event_id)]
        assert (args, kwargs) == ([envelope.to_message()], {})


@pytest.mark.broker
def test_rows_go_oldest_first_in_batches(celery_app, broker):
    envelopes = publish_committed(5)

    sent = relay_pending(celery_app(broker), batch_size=2)

    assert sent == 2
    assert [m["id"] for m in drain_events(broker)] == [str(e.event_id) for e in envelopes[:2]]
    assert unsent() == 3


@pytest.mark.broker
def test_when_the_broker_comes_back_what_waited_is_sent_once(celery_app, broker, down_url):
    waiting = publish_committed(2)
    relay_pending(celery_app(down_url))

    assert relay_pending(celery_app(broker)) == 2

    assert sorted(m["id"] for m in drain_events(broker)) == sorted(str(e.event_id) for e in waiting)
    assert OutboxMessage.objects.order_by("created_at").first().attempts == 2


class SlowSender:
    """A real Celery app whose sends take a little longer, so concurrent relays surely overlap."""

    def __init__(self, app: Celery, delay: float) -> None:
        self.app, self.delay = app, delay

    def send_task(self, *args, **kwargs):
        time.sleep(self.delay)
        return self.app.send_task(*args, **kwargs)


@pytest.mark.broker
@pytest.mark.postgres
def test_concurrent_relays_never_send_a_row_twice(celery_app, broker):
    publish_committed(40)
    barrier = threading.Barrier(4)
    sent_by_relay: dict[int, int] = {}

    def relay(number: int) -> None:
        sender = SlowSender(celery_app(broker), delay=0.005)
        try:
            barrier.wait()
            total = 0
            while (sent := relay_pending(sender, batch_size=7)) > 0:
                total += sent
            sent_by_relay[number] = total
        finally:
            connection.close()

    threads = [threading.Thread(target=relay, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = [m["id"] for m in drain_events(broker)]
    assert sum(sent_by_relay.values()) == 40
    assert len(ids) == len(set(ids)) == 40
    assert sum(1 for total in sent_by_relay.values() if total) >= 2  # they really ran side by side
    assert unsent() == 0


@pytest.fixture
def command_app(monkeypatch, celery_app):
    """Point the project's CELERY_APP (tests.celery_app.app) at a broker for one test."""

    def use(url: str) -> Celery:
        app = celery_app(url)
        monkeypatch.setattr("tests.celery_app.app", app)
        return app

    return use


@pytest.mark.broker
def test_the_relay_command_once_sends_and_exits(command_app, broker):
    command_app(broker)
    [envelope] = publish_committed(1)
    out = StringIO()

    call_command("relay_outbox", "--once", stdout=out)

    assert out.getvalue().strip() == "sent 1"
    assert [m["id"] for m in drain_events(broker)] == [str(envelope.event_id)]
    assert unsent() == 0


def test_the_relay_command_once_with_the_broker_down_keeps_every_row(command_app, down_url):
    command_app(down_url)
    publish_committed(2)
    out = StringIO()

    call_command("relay_outbox", "--once", stdout=out)

    assert out.getvalue().strip() == "sent 0"
    assert unsent() == 2


@pytest.mark.broker
def test_the_beat_task_runs_one_relay_pass_with_the_workers_app(celery_app, broker):
    app = celery_app(broker)
    app.autodiscover_tasks(["common.outbox"], force=True)  # as a service's app finds it in INSTALLED_APPS
    publish_committed(3)
    app.set_current()  # as in a worker, whose app is the current one

    result = app.tasks["outbox.relay"].apply(kwargs={"batch_size": 2})

    assert result.get() == 2
    assert len(drain_events(broker)) == 2
    assert unsent() == 1


@pytest.mark.broker
@pytest.mark.postgres
def test_the_relay_command_keeps_relaying_until_told_to_stop(broker):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _url_of_the_test_database(),
        "CELERY_BROKER_URL": broker,  # Celery reads it before the project's (empty) setting
    }
    relay = subprocess.Popen(
        [sys.executable, "-m", "django", "relay_outbox", "--interval", "0.05"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first = publish_committed(1)
        assert wait_until(lambda: unsent() == 0, timeout=20), relay.stderr.read1().decode()
        later = publish_committed(2)
        assert wait_until(lambda: unsent() == 0, timeout=5)

        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=5) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
        relay.stdout.close()
        relay.stderr.close()

    assert sorted(m["id"] for m in drain_events(broker)) == sorted(str(e.event_id) for e in [*first, *later])


def _url_of_the_test_database() -> str:
    db = connection.settings_dict
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
