"""Slow-body clients: a few connections that send part of a body and stall must not freeze the gateway.

Review item 7 of issue 14: five connections sending 1 byte of a 1,000-byte body froze a gthread worker, since
each held a thread in the body read forever (half-sent headers did the same). The gateway runs here with 8
threads; ten such connections hold every one of them.
"""

import http.client
import io
import json
import select
import socket
import time

import pytest

from tests.conftest import gateway_running, stubs_running

BODY_READ_TIMEOUT = 1.0
SLOW_CLIENTS = 10  # more than the worker's 8 threads


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slow-clients")
    options = {"GATEWAY_BODY_READ_TIMEOUT": str(BODY_READ_TIMEOUT)}
    with stubs_running(folder) as stubs, gateway_running(folder, stubs, **options) as started:
        yield started


def _stalled_login(gateway, *, sent: bytes) -> socket.socket:
    """A connection that announces a 1,000-byte login body, sends `sent` of it and stalls."""
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=10)
    head = f"POST /api/user/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    connection.sendall(f"{head}Content-Length: 1000\r\n\r\n".encode() + sent)
    return connection


def _answer(connection: socket.socket) -> bytes:
    """Everything the gateway sends until it closes the connection (or 10 seconds pass)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


class _Recorded:
    """What http.client needs of a socket, over bytes already received."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def _parsed(answer: bytes) -> http.client.HTTPResponse:
    reply = http.client.HTTPResponse(_Recorded(answer))  # type: ignore[arg-type]
    reply.begin()
    return reply


def test_a_normal_request_is_answered_while_slow_bodies_hold_every_thread(gateway):
    stalled = [_stalled_login(gateway, sent=b"{") for _ in range(SLOW_CLIENTS)]
    try:
        time.sleep(0.3)  # every thread is now in a body read
        reply = gateway.request("GET", "/api/docs", timeout=BODY_READ_TIMEOUT + 4)
    finally:
        for connection in stalled:
            connection.close()

    assert reply.status == 200
    assert reply.elapsed < BODY_READ_TIMEOUT + 2  # the stalled reads were cut at their deadline


def test_a_stalled_body_gets_a_408_in_the_envelope_and_then_the_connection_closes(gateway):
    connection = _stalled_login(gateway, sent=b'{"email": ')
    started = time.monotonic()
    try:
        answer = _answer(connection)
    finally:
        connection.close()
    elapsed = time.monotonic() - started

    reply = _parsed(answer)
    assert reply.status == 408
    assert json.loads(reply.read())["error"]["code"] == "request_timeout"
    assert BODY_READ_TIMEOUT - 0.2 < elapsed < BODY_READ_TIMEOUT + 2


def test_a_body_trickled_byte_by_byte_is_cut_at_the_deadline_not_per_byte(gateway):
    connection = _stalled_login(gateway, sent=b"")
    started = time.monotonic()
    try:
        for _ in range(40):  # one byte every 0.1 s: never idle long, but 4 s in all
            if select.select([connection], [], [], 0.1)[0]:  # the gateway answered: stop sending
                break
            connection.sendall(b" ")
        answer = _answer(connection)
    finally:
        connection.close()

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 4.5


def test_a_stalled_chunked_body_gets_a_408_too(gateway):
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=10)
    head = f"POST /api/user/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    try:
        connection.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n10\r\n{{".encode())
        answer = _answer(connection)
    finally:
        connection.close()

    reply = _parsed(answer)
    assert reply.status == 408
    assert json.loads(reply.read())["error"]["code"] == "request_timeout"


def test_stalled_headers_are_closed_at_the_deadline_and_free_every_thread(gateway):
    host, port = gateway.url.removeprefix("http://").split(":")
    stalled = [socket.create_connection((host, int(port)), timeout=10) for _ in range(SLOW_CLIENTS)]
    try:
        for connection in stalled:
            connection.sendall(b"POST /api/user/login HTTP/1.1\r\nHost: x\r\n")  # half a request's headers
        time.sleep(0.3)
        reply = gateway.request("GET", "/api/docs", timeout=BODY_READ_TIMEOUT + 4)
        closed = [_answer(connection) for connection in stalled]
    finally:
        for connection in stalled:
            connection.close()

    assert reply.status == 200
    assert reply.elapsed < BODY_READ_TIMEOUT + 2
    assert closed == [b""] * SLOW_CLIENTS  # closed without an answer: no request was ever complete


def test_a_body_sent_in_time_is_forwarded(gateway):
    body = json.dumps({"email": "slow@example.com", "password": "x"}).encode()

    reply = gateway.request("POST", "/api/user/login", body=body, headers={"Content-Type": "application/json"})

    assert reply.status == 200
