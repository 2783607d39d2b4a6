"""Kept-alive connections to one upstream instance, and one request/answer exchange over them.

The proxy's hot path. Answers are parsed by httptools (llhttp, the parser of
Node.js and uvicorn); this module only writes the request, feeds the parser
and keeps connections. CPU per exchange on the development machine
(benchmarks/upstream_client.py): urllib3's pooled `urlopen` about 300 µs,
http.client 150 µs, this 40 µs; urllib3 had been the largest single cost of
a proxied request. Health checks and the docs fetch keep urllib3.

Every answer is read whole, and by a deadline: each read waits at most the
read timeout and never past the request's overall deadline, so an upstream
that trickles a byte now and then cannot hold a request for ever. And up to a
size: an answer whose body is, or says it will be, larger than `max_body` is
not read further (TooLarge), so no upstream can fill a gateway worker's memory.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

import httptools
from urllib3.util import wait_for_read

# What may stand in a request target as it is (RFC 3986 unreserved, reserved and "%"); anything else is
# percent-encoded from the bytes the client sent.
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"
_READ_SIZE = 65536
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # sent with Content-Length: 0 when they carry no body


class Unreachable(Exception):
    """No connection could be made: the service never saw the request."""


class TimedOut(Exception):
    """The answer did not come, or did not end, in time."""


class Broken(Exception):
    """The connection failed after the request may have been sent, or the answer was not HTTP."""


class TooLarge(Exception):
    """The answer's body is longer than the exchange's `max_body`: it was not read to the end."""


@dataclass(frozen=True)
class Answer:
    """An upstream's whole answer: its body read to the end, undecoded, and every header line in order."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def all(self, name: str) -> list[str]:
        """Every value of the header `name` (any case)."""
        return [value for key, value in self.headers if key.lower() == name.lower()]


class _Reading:
    """The httptools callbacks of one answer: what has arrived so far."""

    def __init__(self, *, head_only: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = head_only  # an answer to HEAD: its length describes a body that never comes
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.body_size = 0  # bytes of body kept so far
        self.declared_size = 0  # what Content-Length says the body will be (0 without one)
        self.headers_done = False
        self.complete = False
        self.framed = False  # Content-Length or chunked; otherwise the body ends when the connection does
        self.extra = False  # bytes after the answer, never asked for: the connection is not reused
        self.keep_alive = False  # the answer lets the connection carry another request
        self.status = 0  # of the answer proper, kept when its headers end (stray bytes after it cannot change it)

    def on_message_begin(self) -> None:
        self.extra = self.extra or self.complete

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done:  # a chunked body's trailer fields, or what follows the answer
            return
        text, content = name.decode("latin-1"), value.decode("latin-1")
        lowered = text.lower()
        chunked = lowered == "transfer-encoding" and content.lower().rsplit(",", 1)[-1].strip() == "chunked"
        self.framed = self.framed or chunked or lowered == "content-length"
        if lowered == "content-length" and content.strip().isdigit():
            self.declared_size = max(self.declared_size, int(content.strip()))
        self.headers.append((text, content))

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the answer is complete
        self.status = self.parser.get_status_code()
        self.complete = self.head_only and not self._interim()

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.body.append(body)
            self.body_size += len(body)

    def too_large(self, max_body: int | None) -> bool:
        """Whether the body kept, or the one announced by the answer's headers, is over `max_body`."""
        if max_body is None or self.head_only:
            return False
        return self.body_size > max_body or (self.headers_done and self.declared_size > max_body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if self._interim():  # 100 Continue and the like: the answer proper follows
            self.headers, self.body, self.headers_done, self.framed = [], [], False, False
            self.body_size = self.declared_size = 0
        else:
            self.complete = True

    def _interim(self) -> bool:
        return 100 <= self.parser.get_status_code() < 200


class ConnectionPool:
    """Up to `maxsize` idle kept-alive connections to one instance; more are opened when all are busy."""

    def __init__(self, scheme: str, host: str, port: int | None, *, maxsize: int, max_idle: float = 1.0) -> None:
        self._tls = ssl.create_default_context() if scheme == "https" else None
        default_port = 443 if self._tls else 80
        self._host = host
        self._port = port or default_port
        literal = f"[{host}]" if ":" in host else host  # an IPv6 address in brackets
        self._host_header = literal if self._port == default_port else f"{literal}:{self._port}"
        self._maxsize = maxsize
        # An idle connection older than this is closed rather than reused: below the services' keep-alive
        # (gunicorn's 2 s), so the gateway never sends on one the service is closing at that moment.
        self._max_idle = max_idle
        self._idle: list[tuple[socket.socket, float]] = []  # with the time.monotonic() each was put back
        self._lock = threading.Lock()

    def exchange(
        self,
        method: str,
        target: str,
        *,
        headers: dict[str, str],
        body: bytes | None,
        connect: float,
        read: float,
        until: float,
        max_body: int | None = None,
    ) -> Answer:
        """Send one request and read its whole answer.

        `connect` seconds to connect, each read at most `read` seconds and none
        past `until` (a time.monotonic() deadline). Raises Unreachable (nothing
        was sent), TimedOut, Broken, or TooLarge when the answer's body is over
        `max_body` bytes (as declared, or as read: reading stops within one
        socket read of it); the connection is then closed.
        """
        request = self._request(method, target, headers, body)
        sock = self._idle_socket() or self._connected(connect)
        try:
            reading = _read_answer(sock, request, head_only=method == "HEAD", read=read, until=until, max_body=max_body)
        except BaseException:
            sock.close()
            raise
        reading.parser = None  # the parser and its callbacks refer to each other: let them go now
        if reading.complete and reading.keep_alive and not reading.head_only and not reading.extra:
            self._keep(sock)
        else:
            sock.close()
        return Answer(reading.status, reading.headers, b"".join(reading.body))

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for sock, _ in idle:
            sock.close()

    def _request(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {request_target(target)} HTTP/1.1", f"Host: {self._host_header}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:  # never from a server that parsed the client's request
                raise ValueError(f"The {name} header holds a line break.")
            lines.append(f"{name}: {value}")
        if body or method in _BODY_METHODS:
            lines.append(f"Content-Length: {len(body or b'')}")
        return "\r\n".join([*lines, "", ""]).encode("latin-1") + (body or b"")

    def _idle_socket(self) -> socket.socket | None:
        """The most recently used idle connection, if it is recent and the instance has not closed it meanwhile."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                sock, since = self._idle.pop()
            # an idle connection is readable only when the instance closed it (or sent what was never asked for)
            if time.monotonic() - since < self._max_idle and not wait_for_read(sock, timeout=0.0):
                return sock
            sock.close()

    def _connected(self, timeout: float) -> socket.socket:
        try:
            sock = socket.create_connection((self._host, self._port), timeout=timeout)
        except OSError as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return self._tls.wrap_socket(sock, server_hostname=self._host) if self._tls is not None else sock
        except OSError as exc:
            sock.close()
            raise Unreachable(str(exc) or type(exc).__name__) from exc

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < self._maxsize:
                self._idle.append((sock, time.monotonic()))
                return
        sock.close()


def _read_answer(
    sock: socket.socket, request: bytes, *, head_only: bool, read: float, until: float, max_body: int | None = None
) -> _Reading:
    """Send `request` and read its answer until it is complete (or its body is over `max_body`: TooLarge)."""
    reading = _Reading(head_only=head_only)
    left = until - time.monotonic()
    if left <= 0:  # connecting took what time there was: send nothing rather than a request nobody waits for
        raise TimedOut("the deadline passed before the request was sent")
    try:
        sock.settimeout(min(read, left))
        sock.sendall(request)
        while not reading.complete:
            left = until - time.monotonic()
            if left <= 0:
                raise TimedOut("the deadline passed while the upstream was still answering")
            sock.settimeout(min(read, left))
            data = sock.recv(_READ_SIZE)
            if not data:
                if reading.headers_done and not reading.framed:
                    return reading  # a body delimited by the end of the connection: whole
                raise Broken("the upstream closed the connection before its answer was complete")
            try:
                reading.parser.feed_data(data)
            except httptools.HttpParserError:
                if not reading.complete:
                    raise
                reading.extra = True  # the answer was whole; what followed it is not ours to read
            if reading.too_large(max_body):
                raise TooLarge(f"the answer's body is over {max_body} bytes")
    except TimeoutError as exc:
        raise TimedOut(str(exc) or "timed out") from exc
    except (OSError, httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
        raise Broken(str(exc) or type(exc).__name__) from exc
    return reading


def request_target(raw: str) -> str:
    """`raw` (the path and query as the server decoded the client's bytes, latin-1) ready for a request line."""
    if raw.isascii() and raw.isprintable() and " " not in raw:
        return raw
    try:
        sent = raw.encode("latin-1")  # the client's own bytes back
    except UnicodeEncodeError:  # not from the server's raw path (Django's decoded view of it)
        sent = raw.encode()
    return quote(sent, safe=_TARGET_SAFE)
