"""notification_service's admin asks user_service for the second factor and re-checks its admins there.

user_service is a real local HTTP server answering the login, its second step and /internal/users/{id}.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session

ADMIN = {"id": 1, "email": "boss@example.com", "role": "admin", "first_name": "B", "last_name": "S"}
PASSWORD, CODE = "right-Pass-1", "123456"
CHANGELIST = "/admin/notifications/notification/"

pytestmark = pytest.mark.django_db


class UserService(ThreadingHTTPServer):
    """The admin's account behind a password and a TOTP code; `account` is what /internal/ answers."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.account: dict | None = {**ADMIN, "is_active": True}
        self.paths: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    server: UserService

    def do_GET(self):
        self.server.paths.append(self.path)
        if self.headers.get("X-Service-Key") != settings.SERVICE_KEY:
            self._reply(403, {"code": "permission_denied"})
        elif self.server.account is None:
            self._reply(404, {"code": "user_not_found"})
        else:
            self._reply(200, self.server.account)

    def do_POST(self):
        self.server.paths.append(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/api/user/login" and (body["email"], body["password"]) == (ADMIN["email"], PASSWORD):
            self._reply(200, {"mfa_required": True, "challenge": "c1", "expires_in": 300, "methods": ["totp"]})
        elif self.path == "/api/user/login/mfa" and body == {"challenge": "c1", "code": CODE}:
            self._reply(200, {"access": "x", "refresh": "y", "user": ADMIN})
        elif self.path == "/api/user/login/mfa":
            self._reply(400, {"code": "invalid_mfa_code"})
        else:
            self._reply(401, {"code": "invalid_credentials"})

    def _reply(self, status: int, data: dict) -> None:
        envelope = {"success": True, "data": data} if status == 200 else {"success": False, "error": data}
        payload = json.dumps(envelope).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def user_service(settings):
    server = UserService()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.USER_SERVICE_URL = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def sign_in(client, code: str):
    return client.post("/admin/login/", {"username": ADMIN["email"], "password": PASSWORD, "otp_code": code})


def test_the_admin_signs_in_with_the_code_and_not_without_it(client, user_service):
    wrong = sign_in(client, "000000")
    assert "The authentication code is wrong" in wrong.content.decode()
    assert client.get(CHANGELIST).status_code == 302

    assert sign_in(client, CODE).status_code == 302
    assert client.get(CHANGELIST).status_code == 200


def test_a_deactivated_admin_is_signed_out_at_the_next_recheck(client, user_service, settings):
    sign_in(client, CODE)
    settings.ADMIN_ACCOUNT_RECHECK_SECONDS = 0
    user_service.account["is_active"] = False

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert user_service.paths[-1] == "/internal/users/1"
    assert get_user_model().objects.get(username="admin-1").is_active is False
    assert not Session.objects.exists()


def test_the_admin_fails_closed_while_user_service_does_not_answer(client, user_service, settings):
    sign_in(client, CODE)
    settings.ADMIN_ACCOUNT_RECHECK_SECONDS = 0
    user_service.shutdown()
    user_service.server_close()

    response = client.get(CHANGELIST)

    assert response.status_code == 503
    assert "cannot be reached" in response.content.decode()
