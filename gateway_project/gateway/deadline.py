"""One deadline over everything read from an upstream, status line to last byte.

urllib3's read timeout bounds each socket read, so an upstream that sends a
byte now and then could hold a request for ever. Pools built with
`DeadlineHTTPConnection` read every response through a reader that waits no
longer than the time left before the deadline of the current request (set
with `bound`); when it has passed, the read fails as a timeout, which urllib3
reports as `ReadTimeoutError`. Without a deadline (health checks) reads are
as usual.
"""

from __future__ import annotations

import contextvars
import http.client
import io
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("upstream_deadline", default=None)


@contextmanager
def bound(deadline: float) -> Iterator[None]:
    """Reads from upstreams inside this block end by `deadline` (a time.monotonic() value)."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


class DeadlineReader(io.RawIOBase):
    """A socket's bytes, each read waiting at most the socket's timeout and never past the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # keeps the socket open while the response reads
        self._deadline = deadline
        self._timeout = sock.gettimeout()  # urllib3's read timeout, set just before the response is read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's deadline passed while the upstream was still answering")
        self._sock.settimeout(left if self._timeout is None else min(self._timeout, left))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """What http.client's response asks of its socket: a reader (here one bound by the deadline)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(DeadlineReader(self._sock, self._deadline))


class DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading through a DeadlineReader while a deadline is set."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        deadline = _deadline.get()
        super().__init__(sock if deadline is None else _DeadlineSocket(sock, deadline), *args, **kwargs)  # type: ignore[arg-type]


class DeadlineHTTPConnection(HTTPConnection):
    response_class = DeadlineResponse


class DeadlineHTTPSConnection(HTTPSConnection):
    response_class = DeadlineResponse
