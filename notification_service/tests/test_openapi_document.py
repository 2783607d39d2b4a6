"""The OpenAPI document states every operation's body and reply, and a real reply matches what it states."""

import pytest

from common import events
from common.schema_testing import assert_documented, document_faults, resolved
from notifications.models import Notification
from notifications.tasks import consume_event
from tests.conftest import loan_event, message, registered

MESSAGE = {"channel": "in_app", "subject": "Hi", "body": "Hello"}


@pytest.fixture
def document(api):
    return api.get("/openapi.json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


@pytest.fixture
def users_3_and_4(db):
    consume_event(message(registered(3)))
    consume_event(message(registered(4)))


def test_the_document_generates_with_no_error_and_no_faulty_warning():
    assert document_faults() == []


@pytest.mark.django_db
def test_send_reply_is_documented(api, document, users_3_and_4):
    response = api.as_role("admin", 1).post("/api/notifications/send", {**MESSAGE, "user_id": 3}, format="json")

    assert response.status_code == 202
    assert_documented(document, "/api/notifications/send", "post", response)


@pytest.mark.django_db
def test_send_batch_reply_is_documented(api, document, users_3_and_4):
    body = {**MESSAGE, "user_ids": [3, 4]}

    response = api.as_role("admin", 1).post("/api/notifications/send-batch", body, format="json")

    assert response.status_code == 202
    assert_documented(document, "/api/notifications/send-batch", "post", response)


@pytest.mark.django_db
def test_mark_read_reply_is_documented(api, document, users_3_and_4):
    consume_event(message(loan_event(events.LoanCreated, customer_id=3)))
    notification = Notification.objects.filter(user_id=3).first()

    response = api.as_role("customer", 3).post(f"/api/notifications/{notification.id}/read")

    assert response.status_code == 200
    assert_documented(document, "/api/notifications/{notification_id}/read", "post", response)


@pytest.mark.django_db
def test_one_notification_reply_is_documented(api, document, users_3_and_4):
    notification = Notification.objects.filter(user_id=3).first()

    response = api.as_role("customer", 3).get(f"/api/notifications/{notification.id}")

    assert response.status_code == 200
    assert_documented(document, "/api/notifications/{notification_id}", "get", response)


@pytest.mark.parametrize(
    ("path", "field"),
    [("/api/notifications/send", "user_id"), ("/api/notifications/send-batch", "user_ids")],
    ids=["send", "send-batch"],
)
def test_sending_documents_the_body_it_validates(document, path, field):
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]

    schema = resolved(document, body)

    assert sorted(schema["required"]) == sorted(["channel", "subject", "body", field])
    assert schema["properties"]["subject"]["maxLength"] == 200
    assert sorted(resolved(document, schema["properties"]["channel"])["enum"]) == sorted(Notification.Channel.values)


def test_send_batch_documents_its_limit(document, settings):
    body = document["paths"]["/api/notifications/send-batch"]["post"]["requestBody"]["content"]["application/json"]

    user_ids = resolved(document, body["schema"])["properties"]["user_ids"]

    assert user_ids["maxItems"] == settings.MAX_BATCH_RECIPIENTS
    assert user_ids["minItems"] == 1
