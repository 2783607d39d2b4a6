"""The Idempotency-Key header: a repeated write gets the first reply, and its work runs once."""

import io
import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.django_settings import idempotency_settings
from common.idempotency.middleware import request_fingerprint
from common.idempotency.models import IdempotencyKey
from common.outbox.models import OutboxMessage
from tests.urls import WORK, FailingWorkView

pytestmark = pytest.mark.django_db

BODY = {"amount": "10.00", "note": "first"}


def works() -> int:
    """How many runs of the test views' work were kept."""
    return OutboxMessage.objects.filter(name=WORK).count()


def post(api, path="/work", body=BODY, key="key-1", **extra):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    data = body if isinstance(body, str) else json.dumps(body)
    return api.post(path, data, content_type="application/json", **headers, **extra)


def replayed(response) -> bool:
    return response.headers.get("Idempotent-Replayed") == "true"


def test_a_repeat_gets_the_first_reply_and_the_work_runs_once(api):
    first = post(api)
    second = post(api)

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second["Content-Type"] == first["Content-Type"] == "application/json"
    assert not replayed(first)
    assert replayed(second)
    assert works() == 1


def test_the_same_key_with_a_different_body_is_422(api):
    post(api)

    response = post(api, body={**BODY, "note": "second"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert response.json()["correlation_id"] == response["X-Correlation-ID"]
    assert works() == 1


@pytest.mark.parametrize(
    ("method", "path"), [("post", "/work/required"), ("put", "/work"), ("post", "/work?x=1")], ids=str
)
def test_the_same_key_on_another_method_path_or_query_is_422(api, method, path):
    post(api)

    response = getattr(api, method)(
        path, json.dumps(BODY), content_type="application/json", HTTP_IDEMPOTENCY_KEY="key-1"
    )

    assert response.status_code == 422
    assert works() == 1


def test_json_key_order_and_whitespace_do_not_make_another_body(api):
    post(api, body='{"amount": "10.00", "note": "first"}')

    response = post(api, body='{\n  "note":"first",\n  "amount":   "10.00"\n}')

    assert response.status_code == 201
    assert replayed(response)
    assert works() == 1


def test_a_body_that_is_not_json_is_compared_byte_for_byte(api):
    def send(text):
        return api.post("/work", text, content_type="text/plain", HTTP_IDEMPOTENCY_KEY="key-1")

    first = send("amount=10")

    assert first.status_code == 415  # a 4xx like any other: kept
    assert replayed(send("amount=10"))
    assert send("amount=10 ").status_code == 422


def test_a_4xx_reply_is_kept_and_replayed(api):
    first = post(api, "/work/refused")
    second = post(api, "/work/refused")

    assert first.status_code == second.status_code == 409
    assert second.json()["error"]["code"] == "loan_not_editable"
    assert replayed(second)
    assert works() == 1


@pytest.mark.parametrize("status", [503, 429])
def test_5xx_and_429_are_not_kept_so_a_retry_runs_again(api, status):
    FailingWorkView.runs = 0

    first = post(api, f"/work/fails/{status}")
    retry = post(api, f"/work/fails/{status}")

    assert first.status_code == retry.status_code == status
    assert not replayed(retry)
    assert FailingWorkView.runs == 2
    assert works() == 0  # each run rolled back
    assert not IdempotencyKey.objects.exists()


def test_a_view_that_crashes_after_writing_leaves_no_work_and_no_record(api):
    response = post(api, "/work/crashes")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert works() == 0
    assert not IdempotencyKey.objects.exists()


def test_keys_are_scoped_to_the_user_of_the_token(api):
    ann = post(api.as_role("customer", user_id=5))
    bob = post(api.as_role("customer", user_id=6))
    ann_again = post(api.as_role("customer", user_id=5))

    assert ann.status_code == bob.status_code == 201
    assert not replayed(bob)
    assert bob.json()["data"]["caller"] == 6
    assert replayed(ann_again)
    assert ann_again.json()["data"]["caller"] == 5
    assert works() == 2


def test_anonymous_keys_are_scoped_to_the_client_address_the_trusted_proxy_gave(api):
    # NUM_PROXIES is 1 (the gateway): the last X-Forwarded-For entry is the client, earlier ones are the client's word.
    first = post(api, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    forged = post(api, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="7.7.7.7, 203.0.113.7")
    other_client = post(api, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.8")

    assert first.status_code == other_client.status_code == 201
    assert replayed(forged)
    assert not replayed(other_client)
    assert works() == 2
    assert set(IdempotencyKey.objects.values_list("scope", flat=True)) == {
        "anonymous:203.0.113.7",
        "anonymous:203.0.113.8",
    }


def test_a_bad_token_is_401_and_nothing_is_kept(api):
    response = post(api.as_token("not-a-token"))

    assert response.status_code == 401
    assert not IdempotencyKey.objects.exists()
    assert works() == 0


def test_a_view_marked_required_refuses_a_write_without_a_key(api):
    response = post(api, "/work/required", key=None)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert works() == 0
    assert post(api, "/work/required").status_code == 201


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [
        (None, 401, "not_authenticated"),
        ("customer", 403, "permission_denied"),
        ("admin", 400, "idempotency_key_required"),
    ],
    ids=["anonymous", "customer", "admin"],
)
def test_a_caller_the_view_refuses_hears_that_before_the_missing_key(api, role, status, code):
    if role:
        api.as_role(role)

    response = post(api, "/work/required/admin", key=None)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert works() == 0


def test_a_method_the_required_view_lacks_is_405_not_a_missing_key(api):
    response = api.put("/work/required", "{}", content_type="application/json")

    assert response.status_code == 405


def test_without_a_key_a_write_runs_each_time(api):
    post(api, key=None)
    post(api, key=None)

    assert works() == 2
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize(
    "key", ["k" * 256, "ключ", "", "tab\there", "\x7f"], ids=["256-chars", "non-ascii", "empty", "control", "del"]
)
def test_a_key_that_is_not_1_to_255_printable_ascii_characters_is_400(api, key):
    response = post(api, key=key)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert works() == 0


def test_255_printable_characters_and_the_drafts_quoted_form_are_keys(api):
    key = "k" * 255

    assert post(api, key=key).status_code == 201
    assert replayed(post(api, key=f'"{key}"'))  # the draft's structured-field string names the same key


def test_an_exempt_view_ignores_the_header(api):
    post(api, "/work/exempt")
    second = post(api, "/work/exempt")

    assert not replayed(second)
    assert works() == 2
    assert not IdempotencyKey.objects.exists()


def test_reads_and_paths_outside_the_api_ignore_the_header(api):
    assert api.get("/numbers", HTTP_IDEMPOTENCY_KEY="").status_code == 200
    assert post(api, "/health").status_code == 405
    assert post(api, "/health").status_code == 405
    assert not IdempotencyKey.objects.exists()


def running_record(*, started_ago: timedelta, body=BODY, scope="anonymous:127.0.0.1") -> IdempotencyKey:
    """The record a first request left while it ran, as if its process died then."""
    request = RequestFactory().post("/work", json.dumps(body), content_type="application/json")
    started = timezone.now() - started_ago
    return IdempotencyKey.objects.create(
        scope=scope,
        key="key-1",
        fingerprint=request_fingerprint(request),
        lease=uuid.uuid4(),
        created_at=started,
        locked_at=started,
    )


def test_a_repeat_while_the_first_still_runs_is_409(api, settings):
    settings.IDEMPOTENCY_LOCK_SECONDS = 60
    running_record(started_ago=timedelta(seconds=5))

    response = post(api)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_request_in_progress"
    assert works() == 0


def test_a_key_left_running_past_the_lock_time_is_taken_over(api, settings):
    settings.IDEMPOTENCY_LOCK_SECONDS = 60
    dead = running_record(started_ago=timedelta(seconds=61))

    response = post(api)

    assert response.status_code == 201
    assert works() == 1
    record = IdempotencyKey.objects.get()
    assert record.status == IdempotencyKey.Status.DONE
    assert record.lease != dead.lease
    assert replayed(post(api))


@pytest.mark.parametrize("body", [BODY, {**BODY, "note": "another"}], ids=["same-body", "other-body"])
def test_an_expired_key_counts_as_new(api, settings, body):
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = 3600
    post(api)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(seconds=3601))

    response = post(api, body=body)

    assert response.status_code == 201
    assert not replayed(response)
    assert works() == 2
    assert replayed(post(api, body=body))


def test_purge_deletes_only_expired_keys_in_one_delete(settings):
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = 3600
    for name, age in [("old", 3601), ("older", 90_000), ("fresh", 10), ("nearly", 3590)]:
        running_record(started_ago=timedelta(seconds=age), scope=f"user:{name}")
    out = io.StringIO()

    with CaptureQueriesContext(connection) as queries:
        call_command("purge_idempotency_keys", stdout=out)

    assert out.getvalue().strip() == "deleted 2"
    assert sorted(IdempotencyKey.objects.values_list("scope", flat=True)) == ["user:fresh", "user:nearly"]
    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["DELETE"]


def test_the_settings_helper_reads_both_values_with_defaults(monkeypatch):
    monkeypatch.delenv("IDEMPOTENCY_KEY_TTL_SECONDS", raising=False)
    monkeypatch.setenv("IDEMPOTENCY_LOCK_SECONDS", "15")

    assert idempotency_settings() == {"IDEMPOTENCY_KEY_TTL_SECONDS": 86_400, "IDEMPOTENCY_LOCK_SECONDS": 15}
