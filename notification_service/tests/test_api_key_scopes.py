"""Tokens minted for API keys: notification_service enforces notifications:read and notifications:send."""

import pytest

from common.testing import test_keys
from notifications.models import Notification

pytestmark = pytest.mark.django_db
SEND = {"user_id": 3, "channel": "in_app", "subject": "Hi", "body": "Hello"}


def with_key(api, *scopes: str, role: str = "admin", user_id: int = 1):
    token = test_keys.mint(user_id=user_id, role=role, api_key_id=4, scope=" ".join(scopes))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_a_key_without_notifications_send_cannot_send(api):
    response = with_key(api, "notifications:read").post("/api/notifications/send", SEND, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert not Notification.objects.exists()


def test_a_key_with_notifications_send_sends_as_its_admin(api):
    response = with_key(api, "notifications:send").post("/api/notifications/send", SEND, format="json")

    assert response.status_code == 202


def test_reading_the_inbox_needs_notifications_read(api):
    assert with_key(api, "notifications:read", role="customer", user_id=3).get("/api/notifications/").status_code == 200
    refused = with_key(api, "notifications:send", role="customer", user_id=3).get("/api/notifications/")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "This API key lacks the scope notifications:read."
