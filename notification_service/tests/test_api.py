"""The /api/notifications/ endpoints: one's own inbox, reading, and the admin's send and send-batch."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common import events
from notifications.models import Notification
from notifications.tasks import consume_event
from tests.conftest import loan_event, message, registered, unfolded

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def inbox_of_3(mailbox):
    consume_event(message(registered(3)))
    consume_event(message(loan_event(events.LoanCreated, customer_id=3)))
    consume_event(message(registered(4)))
    return Notification.objects.filter(user_id=3, channel="in_app").order_by("-created_at", "-id")


def test_the_inbox_is_mine_and_newest_first(api, inbox_of_3):
    response = api.as_role("customer", 3).get("/api/notifications/")

    page = response.json()["data"]
    assert response.status_code == 200
    assert page["count"] == 4
    assert {n["user_id"] for n in page["results"]} == {3}
    assert page["results"][0]["kind"] == "loan.created"


def test_the_inbox_works_without_the_trailing_slash(api, inbox_of_3):
    assert api.as_role("customer", 3).get("/api/notifications").json()["data"]["count"] == 4


def test_filters_by_kind_and_unread(api, inbox_of_3):
    client = api.as_role("customer", 3)
    first = inbox_of_3.first()
    client.post(f"/api/notifications/{first.id}/read")

    welcome = client.get("/api/notifications/?kind=user.registered").json()["data"]["results"]
    unread = client.get("/api/notifications/?unread=true").json()["data"]["results"]

    assert {n["kind"] for n in welcome} == {"user.registered"}
    assert first.id not in {n["id"] for n in unread}
    assert len(unread) == 3


def test_a_bad_filter_is_400(api):
    assert api.as_role("customer", 3).get("/api/notifications/?unread=perhaps").status_code == 400


def test_one_notification_for_its_user_and_admins_only(api, inbox_of_3):
    notification = inbox_of_3.first()

    assert api.as_role("customer", 3).get(f"/api/notifications/{notification.id}").status_code == 200
    assert api.as_role("admin", 1).get(f"/api/notifications/{notification.id}").status_code == 200
    other = api.as_role("customer", 4).get(f"/api/notifications/{notification.id}")
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "notification_not_found"


def test_reading_marks_it_read_once_and_only_for_its_user(api, inbox_of_3):
    notification = inbox_of_3.first()

    assert api.as_role("customer", 4).post(f"/api/notifications/{notification.id}/read").status_code == 404
    first = api.as_role("customer", 3).post(f"/api/notifications/{notification.id}/read").json()["data"]["read_at"]
    again = api.as_role("customer", 3).post(f"/api/notifications/{notification.id}/read").json()["data"]["read_at"]

    assert first is not None
    assert again == first


def test_the_inbox_needs_a_token(api):
    assert api.get("/api/notifications/").status_code == 401


def test_admin_sends_one_and_it_is_delivered(api, mailbox):
    consume_event(message(registered(3, email="ann@example.com")))

    response = api.as_role("admin", 1).post(
        "/api/notifications/send", {"user_id": 3, "channel": "email", "subject": "Hi", "body": "Hello"}, format="json"
    )

    assert response.status_code == 202
    assert response.json()["data"]["status"] == "pending"  # queued: the reply does not wait for delivery
    assert Notification.objects.get(pk=response.json()["data"]["id"]).status == "sent"
    assert mailbox.messages[-1]["Subject"] == "Hi"


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": 3, "channel": "fax", "subject": "s", "body": "b"},
        {"user_id": 3, "channel": "email", "subject": "", "body": "b"},
        {"channel": "email", "subject": "s", "body": "b"},
        {"user_id": "three", "channel": "email", "subject": "s", "body": "b"},
    ],
    ids=["channel", "subject", "missing-user", "user-not-int"],
)
def test_bad_sends_are_400(api, body):
    response = api.as_role("admin", 1).post("/api/notifications/send", body, format="json")

    assert response.status_code == 400
    assert not Notification.objects.exists()


@pytest.mark.parametrize(("role", "approved"), [("customer", True), ("agent", True), ("agent", False)])
def test_only_admins_send(api, role, approved):
    body = {"user_ids": [3], "channel": "in_app", "subject": "s", "body": "b"}

    response = api.as_role(role, 3, is_approved=approved).post("/api/notifications/send-batch", body, format="json")

    assert response.status_code == 403


def test_a_batch_of_1000_is_created_in_bulk(api):
    body = {"user_ids": list(range(1, 1001)), "channel": "in_app", "subject": "Maintenance", "body": "Sunday"}

    with CaptureQueriesContext(connection) as queries:
        response = api.as_role("admin", 1).post("/api/notifications/send-batch", body, format="json")

    assert response.status_code == 202
    assert response.json()["data"] == {"queued": 1000}
    assert Notification.objects.filter(subject="Maintenance", status="sent").count() == 1000
    assert len(queries) < 50  # bulk: one INSERT on PostgreSQL, a few batches on SQLite; never one per user


def test_a_batch_over_1000_or_empty_is_400(api):
    client = api.as_role("admin", 1)
    base = {"channel": "in_app", "subject": "s", "body": "b"}

    assert (
        client.post(
            "/api/notifications/send-batch", {**base, "user_ids": list(range(1, 1002))}, format="json"
        ).status_code
        == 400
    )
    assert client.post("/api/notifications/send-batch", {**base, "user_ids": []}, format="json").status_code == 400
    assert not Notification.objects.exists()


def test_a_128_character_correlation_id_is_kept_on_the_notification(api, mailbox):
    consume_event(message(registered(3)))
    correlation_id = "c" * 128

    response = api.as_role("admin", 1).post(
        "/api/notifications/send",
        {"user_id": 3, "channel": "email", "subject": "Hi", "body": "Hello"},
        format="json",
        HTTP_X_CORRELATION_ID=correlation_id,
    )

    assert response.status_code == 202
    assert Notification.objects.get(pk=response.json()["data"]["id"]).correlation_id == correlation_id
    assert unfolded(mailbox.messages[-1]["X-Correlation-ID"]) == correlation_id


@pytest.mark.parametrize(
    "subject",
    ["Hi\nBcc: everyone@example.com", "Hi\r\nthere", "Hi\x00", "Tab\tinside", "Hi\u2028there"],
    ids=["newline", "crlf", "nul", "tab", "line-separator"],
)
@pytest.mark.parametrize("endpoint", ["send", "send-batch"])
def test_a_subject_that_is_not_one_line_is_400(api, endpoint, subject):
    recipients = {"user_id": 3} if endpoint == "send" else {"user_ids": [3]}
    body = {**recipients, "channel": "email", "subject": subject, "body": "b"}

    response = api.as_role("admin", 1).post(f"/api/notifications/{endpoint}", body, format="json")

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "validation_error"
    assert "subject" in response.json()["error"]["details"]
    assert not Notification.objects.exists()


@pytest.mark.parametrize("user_id", [2**63, 10**30, 0, -1], ids=["2**63", "10**30", "zero", "negative"])
@pytest.mark.parametrize("endpoint", ["send", "send-batch"])
def test_a_user_id_outside_1_to_2_63_minus_1_is_400(api, endpoint, user_id):
    recipients = {"user_id": user_id} if endpoint == "send" else {"user_ids": [3, user_id]}

    response = api.as_role("admin", 1).post(
        f"/api/notifications/{endpoint}",
        {**recipients, "channel": "in_app", "subject": "s", "body": "b"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not Notification.objects.exists()


def test_the_largest_user_id_is_accepted(api):
    response = api.as_role("admin", 1).post(
        "/api/notifications/send",
        {"user_id": 2**63 - 1, "channel": "in_app", "subject": "s", "body": "b"},
        format="json",
    )

    assert response.status_code == 202
    assert Notification.objects.get().user_id == 2**63 - 1


@pytest.mark.parametrize(
    ("endpoint", "recipients", "answer"),
    [("send", {"user_id": 3}, None), ("send-batch", {"user_ids": [3, 4]}, {"queued": 2})],
    ids=["send", "send-batch"],
)
def test_with_the_broker_down_a_send_is_still_accepted_and_kept_pending(
    api, broker_down, caplog, endpoint, recipients, answer
):
    body = {**recipients, "channel": "email", "subject": "Hi", "body": "Hello"}

    started = time.monotonic()
    response = api.as_role("admin", 1).post(f"/api/notifications/{endpoint}", body, format="json")

    assert response.status_code == 202
    assert time.monotonic() - started < 5
    if answer is not None:
        assert response.json()["data"] == answer
    assert set(Notification.objects.values_list("status", flat=True)) == {"pending"}  # the stuck sweep sends them
    assert any("broker unavailable" in record.getMessage() for record in caplog.records)


def test_a_batch_by_email_reaches_every_known_recipient_once(api, mailbox):
    consume_event(message(registered(3, email="ann@example.com")))
    consume_event(message(registered(4, email="bob@example.com")))
    mailbox.messages.clear()
    body = {"user_ids": [3, 4, 3], "channel": "email", "subject": "Maintenance", "body": "Sunday"}

    response = api.as_role("admin", 1).post("/api/notifications/send-batch", body, format="json")

    assert response.json()["data"] == {"queued": 2}
    assert sorted(Notification.objects.filter(subject="Maintenance").values_list("user_id", "channel", "status")) == [
        (3, "email", "sent"),
        (4, "email", "sent"),
    ]
    assert sorted(m["To"] for m in mailbox.messages) == ["ann@example.com", "bob@example.com"]
    assert {m["Subject"] for m in mailbox.messages} == {"Maintenance"}


def test_openapi_document_asks_for_a_token_on_every_operation(api):
    document = api.get("/openapi.json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert document["components"]["securitySchemes"]["jwtAuth"]["scheme"] == "bearer"
    operations = [(path, op) for path, item in document["paths"].items() for op in item.values()]
    assert len(operations) >= 5
    for path, operation in operations:
        assert operation["security"] == [{"jwtAuth": []}], path
