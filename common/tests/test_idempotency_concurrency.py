"""Idempotency-Key under concurrent requests: real threads, each on its own database connection."""

import json
import threading

import pytest
from django.db import connection

from common.idempotency.models import IdempotencyKey
from common.testing import run_together
from tests.conftest import Api
from tests.local_servers import free_port
from tests.test_idempotency import BODY, post, replayed, works
from tests.urls import WorkView

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def held_first_run():
    """Holds the next run of WorkView inside the view until the test sets the event it returns."""
    WorkView.inside.clear()
    release = threading.Event()
    WorkView.hold = release
    yield release
    release.set()
    WorkView.hold = None


def in_thread(action) -> tuple[threading.Thread, dict]:
    """Start `action()` in a thread with its own connection; its result lands in the dict under "response"."""
    result: dict = {}

    def run() -> None:
        try:
            result["response"] = action()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_a_repeat_while_the_first_runs_is_409_and_after_it_a_replay(held_first_run):
    # given: the first request is inside the view
    thread, first = in_thread(lambda: post(Api()))
    assert WorkView.inside.wait(timeout=10)

    # when
    during = post(Api())
    held_first_run.set()
    thread.join(timeout=10)
    after = post(Api())

    # then
    assert during.status_code == 409
    assert during.json()["error"]["code"] == "idempotency_request_in_progress"
    assert first["response"].status_code == 201
    assert replayed(after)
    assert after.content == first["response"].content
    assert works() == 1


@pytest.mark.postgres
def test_a_slow_first_request_whose_key_was_taken_over_keeps_nothing(held_first_run, settings):
    # given: the first request runs past the lock time, and a second takes its key over
    settings.IDEMPOTENCY_LOCK_SECONDS = 0
    thread, first = in_thread(lambda: post(Api()))
    assert WorkView.inside.wait(timeout=10)
    second = post(Api())

    # when: the first one finishes after all
    held_first_run.set()
    thread.join(timeout=10)

    # then: only the second one's work and reply are kept
    assert second.status_code == 201
    assert first["response"].status_code == 409
    assert works() == 1
    assert replayed(post(Api()))
    assert post(Api()).content == second.content


@pytest.mark.postgres
def test_twenty_requests_with_one_key_at_once_run_the_work_exactly_once():
    responses = run_together(20, lambda _: post(Api(), body=BODY, key="together"))

    assert works() == 1
    firsts = [r for r in responses if r.status_code == 201 and not replayed(r)]
    assert len(firsts) == 1
    for response in responses:
        assert response.status_code in (201, 409)
        if response.status_code == 201:
            assert response.content == firsts[0].content
        else:
            assert response.json()["error"]["code"] == "idempotency_request_in_progress"
    assert IdempotencyKey.objects.get().status == IdempotencyKey.Status.DONE


@pytest.mark.postgres
def test_a_database_that_is_down_is_503_database_unavailable():
    database = connection.settings_dict
    saved_port = database["PORT"]
    connection.close()
    database["PORT"] = free_port()  # nothing listens there
    try:
        response = Api().post("/work", json.dumps(BODY), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    finally:
        connection.close()
        database["PORT"] = saved_port

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert not IdempotencyKey.objects.exists()
