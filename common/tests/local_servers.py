"""Real servers on free local ports for the tests: a scriptable HTTP server and a throw-away redis-server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    """What the server answers: status, raw body, and how long it hangs first."""

    status: int = 200
    body: bytes = b'{"ok": true}'
    hang: float = 0.0


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedServer:
    """A threaded HTTP server whose replies a test sets; records every request it receives."""

    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    hits: list[Hit] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def methods(self) -> list[str]:
        return [hit.method for hit in self.hits]

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if self.replies else self.default

    def serve_json(self, document: dict) -> None:
        self.default = Reply(body=json.dumps(document).encode())

    def stop(self) -> None:
        self.release.set()  # hanging handlers return at once
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server.hits.append(Hit(self.command, self.path, dict(self.headers), body))
            reply = server.next_reply()
            if reply.hang:
                server.release.wait(reply.hang)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up waiting, which is the point of a hang

        do_GET = do_POST = do_PUT = do_DELETE = _reply

        def log_message(self, *args) -> None:
            pass

    return Handler


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.05) -> bool:
    """Poll `condition` until true or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A private redis-server on a free port, no persistence; stopped by `stop()`."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="lms-common-redis-")
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self._dir.name,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_until(lambda: _answers_ping(self.port), timeout=10):
            self.stop()
            raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._dir.cleanup()
