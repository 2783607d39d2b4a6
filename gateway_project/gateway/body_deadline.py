"""A deadline on reading a request's body, so a few slow clients cannot hold every server thread.

gunicorn's gthread worker hands a connection to a thread once the request's headers are parsed; the body
is then read in that thread with a blocking socket and no timeout, so a client that announces a body and
stalls (or trickles it a byte at a time) holds the thread for as long as it likes. A socket timeout would
bound only each wait, not the whole read, so one watchdog thread per process instead shuts the reading
half of a connection whose body is not in by GATEWAY_BODY_READ_TIMEOUT: the blocked read then ends, and
the gateway answers 408 on the still-open writing half. Only requests with a body are watched, so the
hop of a GET costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

TICK_SECONDS = 0.05  # how late past its deadline a read may be cut


class Watch:
    """One body read being watched; `expired` is set when the watchdog cut it."""

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline
        self.expired = False


class Watchdog(threading.Thread):
    """Cuts the reading half of every watched connection past its deadline."""

    def __init__(self) -> None:
        super().__init__(name="body-read-deadline", daemon=True)
        self.lock = threading.Lock()
        self.watches: set[Watch] = set()
        self.wake = threading.Event()

    def add(self, watch: Watch) -> None:
        with self.lock:
            self.watches.add(watch)
        self.wake.set()

    def remove(self, watch: Watch) -> None:
        with self.lock:
            self.watches.discard(watch)

    def run(self) -> None:
        """Sleeps while nothing is watched, else looks every TICK_SECONDS."""
        while True:
            self.wake.wait()
            with self.lock:
                if not self.watches:
                    self.wake.clear()
                    continue
                overdue = [watch for watch in self.watches if watch.deadline <= time.monotonic()]
                for watch in overdue:
                    self.watches.discard(watch)
                    watch.expired = True
            for watch in overdue:
                with contextlib.suppress(OSError):  # the client may have gone already
                    watch.connection.shutdown(socket.SHUT_RD)
            time.sleep(TICK_SECONDS)


_lock = threading.Lock()
_watchdog: Watchdog | None = None
_watchdog_pid: int | None = None


def _running_watchdog() -> Watchdog:
    """This process's watchdog, started on first use (a forked gunicorn worker starts its own)."""
    global _watchdog, _watchdog_pid
    with _lock:
        if _watchdog is None or _watchdog_pid != os.getpid() or not _watchdog.is_alive():
            _watchdog, _watchdog_pid = Watchdog(), os.getpid()
            _watchdog.start()
        return _watchdog


def has_body(meta: dict[str, Any]) -> bool:
    """Whether the request announces a body (a Content-Length above 0, or chunked)."""
    if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        return True
    try:
        return int(meta.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return False


@contextlib.contextmanager
def body_deadline(meta: dict[str, Any], seconds: float) -> Iterator[Watch | None]:
    """Watch the body read done inside the block; None when there is nothing to watch.

    The server's client socket is `gunicorn.socket` in the WSGI environ; other servers (the ones the
    benchmarks compare) give none, and their reads are not watched.
    """
    connection = meta.get("gunicorn.socket")
    if seconds <= 0 or not isinstance(connection, socket.socket) or not has_body(meta):
        yield None
        return
    watch = watch_connection(connection, seconds)
    try:
        yield watch
    finally:
        release(watch)


def watch_connection(connection: socket.socket, seconds: float) -> Watch:
    """Cut the reading half of `connection` in `seconds` unless released before (the server's header read too)."""
    watch = Watch(connection, time.monotonic() + seconds)
    _running_watchdog().add(watch)
    return watch


def release(watch: Watch) -> None:
    """The read finished in time: the connection is no longer watched."""
    _running_watchdog().remove(watch)
