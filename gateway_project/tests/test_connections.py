"""The upstream exchange against raw-socket servers: framing, interim answers, failures and connection reuse."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from gateway.connections import Broken, ConnectionPool, TimedOut, TooLarge, Unreachable, request_target

Reply = Callable[[bytes], bytes | None]  # the request's bytes -> what to send back (None: say nothing)


class RawServer:
    """Answers each request (read up to its blank line and Content-Length) with `reply`; records connections."""

    def __init__(self, reply: Reply, *, close_after: bool = False) -> None:
        self.reply = reply
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:  # the pool closing its end, or the test closing the server
            self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(buffer) < length:
                buffer += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + buffer[:length])
            buffer = buffer[length:]
            answer = self.reply(self.requests[-1])
            if answer is None:
                time.sleep(5)
                return
            conn.sendall(answer)
            if self.close_after:
                return

    def close(self) -> None:
        self.listener.close()
        for conn in self.open:
            conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[RawServer, ConnectionPool]]]:
    servers: list[RawServer] = []

    def start(reply: Reply, **options: bool) -> tuple[RawServer, ConnectionPool]:
        server = RawServer(reply, **options)
        servers.append(server)
        return server, ConnectionPool("http", "127.0.0.1", server.port, maxsize=4)

    yield start
    for server in servers:
        server.close()


def exchange(pool: ConnectionPool, method: str = "GET", target: str = "/x", *, body: bytes | None = None, **over):
    options = {"headers": {"X-Test": "1"}, "body": body, "connect": 1.0, "read": 2.0, "until": time.monotonic() + 3}
    return pool.exchange(method, target, **{**options, **over})


def fixed(answer: bytes) -> Reply:
    return lambda request: answer


OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
OK += b"Content-Length: 5\r\n\r\nhello"


def test_an_answer_with_a_length_is_read_whole_its_headers_in_order_and_the_connection_reused(serve):
    server, pool = serve(fixed(OK))

    first, second = exchange(pool), exchange(pool)

    assert (first.status, first.body) == (200, b"hello")
    assert first.all("set-cookie") == ["a=1", "b=2"]
    assert [name for name, _ in first.headers] == ["Content-Type", "Set-Cookie", "Set-Cookie", "Content-Length"]
    assert second.body == b"hello"
    assert server.connections == 1


def test_the_request_line_host_and_headers_are_sent_as_given(serve):
    server, pool = serve(fixed(OK))

    exchange(pool, "GET", "/api/user/profile?page=2&q=a%2Fb")

    head = server.requests[0].decode("latin-1").split("\r\n")
    assert head[0] == "GET /api/user/profile?page=2&q=a%2Fb HTTP/1.1"
    assert head[1] == f"Host: 127.0.0.1:{server.port}"
    assert "X-Test: 1" in head
    assert not any(line.lower().startswith(("content-length", "accept-encoding", "user-agent")) for line in head)


def test_a_body_is_sent_once_with_its_length_and_a_bodiless_post_says_zero(serve):
    server, pool = serve(fixed(OK))

    exchange(pool, "POST", body=b'{"a": 1}')
    exchange(pool, "POST")

    assert server.requests[0].endswith(b"Content-Length: 8\r\n\r\n" + b'{"a": 1}')
    assert server.requests[1].endswith(b"Content-Length: 0\r\n\r\n")


def test_a_chunked_answer_is_read_whole(serve):
    _, pool = serve(fixed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"))

    assert exchange(pool).body == b"abcde"


def test_an_answer_announcing_a_body_over_max_body_is_refused_at_its_headers(serve):
    server, pool = serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 10))

    started = time.monotonic()
    with pytest.raises(TooLarge):
        exchange(pool, max_body=1000)  # without the cap: waits for 100 MB that never come, then times out

    assert time.monotonic() - started < 1.0
    with pytest.raises(TooLarge):
        exchange(pool, max_body=1000)
    assert server.connections == 2  # the refused answer's connection was closed, not reused


def test_a_chunked_answer_growing_over_max_body_is_refused_as_it_is_read(serve):
    chunk = b"258\r\n" + b"y" * 600 + b"\r\n"
    _, pool = serve(fixed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3))  # never ends

    started = time.monotonic()
    with pytest.raises(TooLarge):
        exchange(pool, max_body=1000)

    assert time.monotonic() - started < 1.0


def test_an_answer_of_exactly_max_body_is_read_whole_and_a_head_answer_is_never_too_large(serve):
    _, pool = serve(fixed(OK))
    _, head_pool = serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n"))

    assert exchange(pool, max_body=5).body == b"hello"
    assert exchange(head_pool, "HEAD", max_body=5).status == 200


def test_an_answer_ended_by_closing_the_connection_is_whole_and_the_connection_not_reused(serve):
    server, pool = serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"), close_after=True)

    assert exchange(pool).body == b"until the end"
    assert exchange(pool).body == b"until the end"
    assert server.connections == 2


def test_a_head_answer_ends_with_its_headers_although_its_length_says_more(serve):
    _, pool = serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"))

    started = time.monotonic()
    answer = exchange(pool, "HEAD")

    assert (answer.status, answer.body, answer.all("content-length")) == (200, b"", ["1000"])
    assert time.monotonic() - started < 1


def test_an_interim_answer_is_skipped_for_the_answer_proper(serve):
    _, pool = serve(fixed(b"HTTP/1.1 100 Continue\r\n\r\n" + OK))

    answer = exchange(pool, "POST", body=b"{}")

    assert (answer.status, answer.body) == (200, b"hello")
    assert "Set-Cookie" in [name for name, _ in answer.headers]


def test_bytes_after_the_answer_keep_the_connection_from_being_reused(serve):
    server, pool = serve(fixed(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"))

    assert exchange(pool).body == b"hello"
    assert exchange(pool).body == b"hello"
    assert server.connections == 2


@pytest.mark.parametrize("after", [b"HTTP/1.1 503", b"garbage\r\n\r\n"], ids=["a partial answer", "garbage"])
def test_what_follows_a_whole_answer_changes_neither_its_status_nor_its_body(serve, after):
    server, pool = serve(fixed(OK + after))

    first = exchange(pool)
    second = exchange(pool)

    assert (first.status, first.body, second.status) == (200, b"hello", 200)
    assert server.connections == 2  # never reused after stray bytes


def test_trailer_fields_of_a_chunked_answer_are_not_taken_for_its_headers(serve):
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 9\r\n\r\n"
    _, pool = serve(fixed(answer))

    reply = exchange(pool)

    assert reply.body == b"ok"
    assert reply.all("X-Sum") == []


def test_an_answer_chunked_then_otherwise_encoded_ends_with_the_connection(serve):
    _, pool = serve(fixed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nas sent"), close_after=True)

    assert exchange(pool).body == b"as sent"


def test_an_idle_connection_kept_too_long_is_not_reused(serve):
    server, _ = serve(fixed(OK))
    pool = ConnectionPool("http", "127.0.0.1", server.port, maxsize=4, max_idle=0.2)

    exchange(pool)
    exchange(pool)
    time.sleep(0.3)
    exchange(pool)

    assert server.connections == 2


def test_nothing_is_sent_when_the_deadline_passed_while_connecting(serve):
    server, pool = serve(fixed(OK))

    with pytest.raises(TimedOut):
        exchange(pool, until=time.monotonic() - 1)
    time.sleep(0.2)
    assert server.requests == []


def test_an_idle_connection_the_upstream_closed_is_replaced_without_an_error(serve):
    server, pool = serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    exchange(pool)
    for conn in server.open:
        conn.shutdown(socket.SHUT_RDWR)
    time.sleep(0.1)

    assert exchange(pool).body == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", b"NOT HTTP AT ALL\r\n\r\n", b""],
    ids=["cut short", "not HTTP", "nothing"],
)
def test_an_answer_cut_short_or_not_http_is_broken(serve, answer):
    _, pool = serve(fixed(answer), close_after=True)

    with pytest.raises(Broken):
        exchange(pool)


def test_nothing_listening_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(Unreachable):
        exchange(ConnectionPool("http", "127.0.0.1", port, maxsize=1))


def test_a_silent_upstream_times_out_by_the_read_timeout_and_by_the_deadline(serve):
    _, pool = serve(lambda request: None)

    started = time.monotonic()
    with pytest.raises(TimedOut):
        exchange(pool, read=0.3)
    assert time.monotonic() - started < 1

    started = time.monotonic()
    with pytest.raises(TimedOut):
        exchange(pool, read=10.0, until=time.monotonic() + 0.3)
    assert time.monotonic() - started < 1


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(serve):
    server, pool = serve(fixed(OK))

    with pytest.raises(ValueError, match="line break"):
        exchange(pool, headers={"X-Injected": "a\r\nX-Evil: 1"})
    assert server.requests == []


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("/api/loan/1?x=a%2Fb", "/api/loan/1?x=a%2Fb"),
        ("/api/user/caf\xc3\xa9", "/api/user/caf%C3%A9"),  # the client's UTF-8 bytes, as the server decoded them
        ("/api/user/a b", "/api/user/a%20b"),
        ("/api/user/\x7f", "/api/user/%7F"),
    ],
)
def test_a_request_target_is_sent_as_the_client_sent_it_only_unsendable_bytes_encoded(raw, sent):
    assert request_target(raw) == sent
