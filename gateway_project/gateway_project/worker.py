"""The gateway's gunicorn worker: gthread with a deadline on reading each request's headers.

gthread gives a connection to a thread as soon as its first bytes arrive and then parses the headers with
a blocking read and no timeout, so a client that sends half a request line and stalls holds the thread for
good (ten of them froze an 8-thread worker). This worker watches that read with the same watchdog as the
body (gateway.body_deadline): past GATEWAY_BODY_READ_TIMEOUT the connection's reading half is shut and
gunicorn closes it. Started as `--worker-class gateway_project.worker.GatewayThreadWorker`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from gunicorn.workers.gthread import ThreadWorker

from gateway.body_deadline import Watch, release, watch_connection


class GatewayThreadWorker(ThreadWorker):
    """ThreadWorker whose header read has a deadline; the body's is set by the gateway's view."""

    def handle(self, conn: Any) -> tuple[bool, Any]:
        """One request of `conn`: its headers are watched until parsed (then handle_request releases them)."""
        seconds = settings.GATEWAY_BODY_READ_TIMEOUT
        conn.header_watch = watch_connection(conn.sock, seconds) if seconds > 0 else None
        try:
            return super().handle(conn)
        finally:
            _release(conn)

    def handle_request(self, req: Any, conn: Any) -> bool:
        """The headers are in: the application's own time starts here, unwatched until it reads a body."""
        _release(conn)
        return super().handle_request(req, conn)


def _release(conn: Any) -> None:
    watch: Watch | None = getattr(conn, "header_watch", None)
    if watch is not None:
        release(watch)
        conn.header_watch = None
