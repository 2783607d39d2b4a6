"""A real worker process on a real broker: an event published three times is delivered once per channel."""

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
from notifications.models import Notification
from tests.conftest import message, registered

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]
BROKER = os.environ.get("TEST_BROKER_URL", "")


@pytest.fixture
def worker(tmp_path, monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery would prefer it over the producer's own broker
    if not BROKER:
        pytest.skip("set TEST_BROKER_URL to a Redis or RabbitMQ server")
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "CELERY_BROKER_URL": BROKER,
        "DATABASE_URL": f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "EMAIL_HOST": settings.EMAIL_HOST,
        "EMAIL_PORT": str(settings.EMAIL_PORT),
        "LMS_VAR_DIR": str(tmp_path),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "notification_service.celery",
            "worker",
            "-Q",
            "events,notifications",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=Path(settings.BASE_DIR),
        env=env,
        start_new_session=True,
    )
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_an_event_published_three_times_is_delivered_once_per_channel(worker, mailbox):
    producer = Celery(broker=BROKER)
    event = message(registered(31, email="thrice@example.com"), event_id=uuid.uuid4())

    for _ in range(3):
        producer.send_task(EVENT_TASK_NAME, args=[event], queue=EVENT_QUEUE)

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
