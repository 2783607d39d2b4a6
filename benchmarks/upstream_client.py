"""What one upstream exchange costs the gateway, per HTTP client: CPU and wall time per request.

    .venv/bin/python benchmarks/upstream_client.py [--requests 5000] [--rounds 5]

A canned upstream in its own process answers every request on a kept-alive
connection with the same 330-byte reply (user_service's profile, its headers
as gunicorn sends them). The same GET, with the headers the gateway forwards
(a 600-byte token among them), goes through each candidate in turn, rounds
interleaved; the best round of each is kept. The baseline is a bare socket
(send the request bytes, receive the reply bytes, no parsing): what no client
can go below.
  * urllib3 `HTTPConnectionPool.urlopen`, as the gateway called it before;
  * http.client, one kept-alive `HTTPConnection`;
  * gateway.connections (kept-alive sockets, httptools parsing), the gateway's own.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway_project"))

from gateway.connections import ConnectionPool

BODY = b'{"success":true,"data":{"id":1,"email":"bench@example.com","role":"admin","is_approved":true}}'
REPLY = (
    b"HTTP/1.1 200 OK\r\nDate: Tue, 24 Nov 2026 03:00:00 GMT\r\nServer: gunicorn\r\n"
    b"Content-Type: application/json\r\nVary: Accept, Cookie\r\nAllow: GET, PATCH, HEAD, OPTIONS\r\n"
    b"X-Frame-Options: DENY\r\nContent-Length: %d\r\nX-Content-Type-Options: nosniff\r\n"
    b"Referrer-Policy: same-origin\r\nCross-Origin-Opener-Policy: same-origin\r\nX-Correlation-ID: abc\r\n\r\n"
) % len(BODY) + BODY
HEADERS = {
    "User-Agent": "python-urllib3/2.5.0",
    "Accept": "*/*",
    "Authorization": "Bearer " + "x" * 600,
    "X-Forwarded-For": "127.0.0.1",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Host": "127.0.0.1:8000",
    "X-Correlation-ID": "0123456789abcdef0123456789abcdef",
}
PATH = "/api/user/profile"
SERVER = f"""
import socket, threading
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
REPLY = {REPLY!r}
def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    while data := conn.recv(65536):
        buffer += data
        while b"\\r\\n\\r\\n" in buffer:
            _, buffer = buffer.split(b"\\r\\n\\r\\n", 1)
            conn.sendall(REPLY)
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""


def candidates(port: int) -> dict[str, Callable[[], bytes]]:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=4, retries=False)

    def with_urllib3() -> bytes:
        options = {"retries": False, "redirect": False, "decode_content": False, "assert_same_host": False}
        timeout = urllib3.Timeout(connect=1.0, read=10.0)
        return pool.urlopen("GET", PATH, headers=HEADERS, timeout=timeout, preload_content=True, **options).data

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def with_http_client() -> bytes:
        connection.request("GET", PATH, headers=HEADERS)
        return connection.getresponse().read()

    connections = ConnectionPool("http", "127.0.0.1", port, maxsize=4)

    def with_httptools() -> bytes:
        until = time.monotonic() + 15
        return connections.exchange("GET", PATH, headers=HEADERS, body=None, connect=1.0, read=10.0, until=until).body

    bare = socket.create_connection(("127.0.0.1", port))
    bare.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    request_bytes = (request + "\r\n").encode()

    def bare_socket() -> bytes:
        bare.sendall(request_bytes)
        received = b""
        while len(received) < len(REPLY):
            received += bare.recv(65536)
        return received

    return {
        "bare socket, no parsing (baseline)": bare_socket,
        "urllib3 HTTPConnectionPool.urlopen": with_urllib3,
        "http.client HTTPConnection": with_http_client,
        "gateway.connections (httptools)": with_httptools,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000, help="exchanges per candidate and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over every candidate (the best is kept)")
    args = parser.parse_args()

    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, start_new_session=True)
    try:
        port = int(server.stdout.readline())
        clients = candidates(port)
        for call in clients.values():  # warm up, and check every candidate gets the whole reply
            for _ in range(200):
                assert call().endswith(BODY)
        best = {label: (float("inf"), float("inf")) for label in clients}
        for _ in range(args.rounds):
            for label, call in clients.items():
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(args.requests):
                    call()
                cpu = (time.process_time() - cpu) / args.requests * 1e6
                wall = (time.perf_counter() - wall) / args.requests * 1e6
                best[label] = (min(best[label][0], cpu), min(best[label][1], wall))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()

    baseline = best["bare socket, no parsing (baseline)"][0]
    print(f"{'client':<40} {'CPU us':>8} {'wall us':>8} {'CPU vs bare':>12}")
    for label, (cpu, wall) in best.items():
        print(f"{label:<40} {cpu:>8.0f} {wall:>8.0f} {cpu / baseline:>11.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
