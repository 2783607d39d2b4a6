"""A real worker process on a real broker.

An event published three times is delivered once per channel; a transient
SMTP failure is retried by the worker and then sent; an SMTP server that
cannot be reached ends in `failed` after the retry cap.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings

from common.events import EVENT_QUEUE, EVENT_TASK_NAME
from notifications.models import DeadLetter, Notification
from tests.conftest import free_port, message, registered

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]
BROKER = os.environ.get("TEST_BROKER_URL", "")


@pytest.fixture
def start_worker(tmp_path, monkeypatch):
    """Starts `celery worker` on the test broker and database, with extra environment; stops it afterwards."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery would prefer it over the producer's own broker
    if not BROKER:
        pytest.skip("set TEST_BROKER_URL to a Redis or RabbitMQ server")
    database = settings.DATABASES["default"]
    processes = []

    def start(**extra_env: str) -> None:
        env = {
            **os.environ,
            "CELERY_BROKER_URL": BROKER,
            "DATABASE_URL": f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "EMAIL_HOST": settings.EMAIL_HOST,
            "EMAIL_PORT": str(settings.EMAIL_PORT),
            "LMS_VAR_DIR": str(tmp_path),
            **extra_env,
        }
        argv = [sys.executable, "-m", "celery", "-A", "notification_service.celery", "worker"]
        argv += ["-Q", "events,notifications", "--concurrency", "1", "--without-gossip", "--without-mingle"]
        processes.append(
            subprocess.Popen(
                [*argv, "--loglevel", "WARNING"], cwd=Path(settings.BASE_DIR), env=env, start_new_session=True
            )
        )

    yield start
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def worker(start_worker):
    start_worker()


def _publish(event: dict, times: int = 1) -> None:
    producer = Celery(broker=BROKER)
    for _ in range(times):
        producer.send_task(EVENT_TASK_NAME, args=[event], queue=EVENT_QUEUE)


def _email_of(user_id: int, *, until: set[str], timeout: float = 30) -> Notification:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        email = Notification.objects.filter(user_id=user_id, channel="email").first()
        if email is not None and email.status in until:
            return email
        time.sleep(0.2)
    raise AssertionError(f"the email of user {user_id} never reached {until}")


def test_an_event_published_three_times_is_delivered_once_per_channel(worker, mailbox):
    event = message(registered(31, email="thrice@example.com"), event_id=uuid.uuid4())

    _publish(event, times=3)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if Notification.objects.filter(user_id=31, status="sent").count() == 2:
            break
        time.sleep(0.2)
    time.sleep(1)  # give any duplicate a chance to show up
    assert sorted(Notification.objects.filter(user_id=31).values_list("channel", "status")) == [
        ("email", "sent"),
        ("in_app", "sent"),
    ]
    assert len([m for m in mailbox.messages if m["To"] == "thrice@example.com"]) == 1


FAST_RETRIES = {"NOTIFICATION_RETRY_BACKOFF_SECONDS": "1", "NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS": "1"}


def test_a_transient_smtp_failure_is_retried_by_the_worker_and_then_sent(start_worker, mailbox):
    mailbox.defer = 2  # "451 try again later" twice, then the server takes the message
    start_worker(**FAST_RETRIES)

    _publish(message(registered(41, email="later@example.com"), event_id=uuid.uuid4()))

    email = _email_of(41, until={"sent", "failed"})
    assert (email.status, email.attempts) == ("sent", 3)
    assert len([m for m in mailbox.messages if m["To"] == "later@example.com"]) == 1


def test_an_unreachable_smtp_server_ends_failed_after_the_retry_cap(start_worker, mailbox):
    start_worker(EMAIL_PORT=str(free_port()), NOTIFICATION_MAX_RETRIES="2", **FAST_RETRIES)

    _publish(message(registered(42, email="nowhere@example.com"), event_id=uuid.uuid4()))

    email = _email_of(42, until={"failed"})
    assert email.attempts == 3  # the first try and two retries
    assert email.last_error
    in_app = Notification.objects.get(user_id=42, channel="in_app")
    assert in_app.status == "sent"  # one channel's failure does not hold back the others
    assert mailbox.messages == []


def test_an_event_the_worker_cannot_read_becomes_a_dead_letter_through_the_broker(worker):
    event = message(registered(43)) | {"name": "loan.teleported"}

    _publish(event)

    deadline = time.monotonic() + 30
    while not DeadLetter.objects.exists():
        assert time.monotonic() < deadline, "the dead letter never arrived"
        time.sleep(0.2)
    [letter] = DeadLetter.objects.all()
    assert (str(letter.event_id), letter.reason, letter.status) == (event["event_id"], "rejected", "dead")
