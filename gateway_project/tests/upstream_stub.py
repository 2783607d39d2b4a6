"""A stand-in service for the gateway's tests, run as its own process: echoes what it received.

    python upstream_stub.py PORT LOG_FILE [PUBLIC_KEY_PEM PRIVATE_KEY_PEM]

GET /health answers 200 (after the seconds written in LOG_FILE with the suffix
.health-delay, if that file exists); paths containing /hang/ never answer in time;
/slow/ answers after half a second; /trickle/ sends its body and /trickle-head/
its status line a byte every 0.1 s (each read is quick, the whole takes seconds);
paths containing /unavailable/ answer 503 without the error envelope,
/database-down/ 503 `database_unavailable` and /dependency-down/ 503
`service_unavailable` in it (the service is up, one behind it is not);
/throttled/ answers 429 with its own Retry-After and RateLimit-* headers (as
user_service's login throttle); /garbage/ answers no HTTP at all;
/raw/ answers without Content-Type and with repeated headers; /chunked/ with
a chunked body (no Content-Length); /hop/ with
hop-by-hop headers; the JWKS path serves the given public key; /openapi.json
serves a small schema named after LOG_FILE's stem (one public path, one
/internal/ path); POST /internal/api-keys/exchange answers the X-API-Key listed
in LOG_FILE with the suffix .keys (JSON: key -> id, name, rate_limit, scope,
user_id, role) with a token minted by the test keys, as user_service does, and
any other key 401 `invalid_api_key`; everything else echoes method, path, headers and body as JSON.
Every request is appended to LOG_FILE as one JSON line; GET /health to
LOG_FILE with the suffix .health.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORT, LOG = int(sys.argv[1]), Path(sys.argv[2])
JWKS = None
THROTTLED_HEADERS = {"Retry-After": "42", "RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "42"}
if len(sys.argv) > 3:
    from common.keys import load_public_key, public_jwk

    JWKS = {"keys": [public_jwk(load_public_key(Path(sys.argv[3]).read_bytes()))]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without this each reply waits for a delayed ACK

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        record = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        record["peer_port"] = self.client_address[1]  # the same for requests over one kept-alive connection
        with (LOG.with_suffix(".health") if self.path == "/health" else LOG).open("a") as log:
            log.write(json.dumps(record) + "\n")
        if self.path == "/health":
            delay = LOG.with_suffix(".health-delay")
            time.sleep(float(delay.read_text()) if delay.exists() else 0)
            return self._reply(200, {"status": "ok"})
        if "/hang/" in self.path:
            time.sleep(30)
        if "/slow/" in self.path:
            time.sleep(0.5)
        if "/trickle" in self.path:
            return self._trickle(slow_head="/trickle-head/" in self.path)
        if "/raw/" in self.path:
            return self._raw(b"plain", [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/; HttpOnly")])
        if "/chunked/" in self.path:
            return self._chunked([b'{"parts": ', b'"two"}'])
        if "/hop/" in self.path:
            hop = [("Connection", "X-Hop-Custom"), ("X-Hop-Custom", "for this link only"), ("Keep-Alive", "timeout=5")]
            hop += [("Proxy-Authenticate", "Basic"), ("Upgrade", "h2c"), ("Trailer", "X-Sum"), ("X-Kept", "yes")]
            return self._raw(b"{}", hop)
        if "/garbage/" in self.path:
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
            self.close_connection = True
            return None
        if "/unavailable/" in self.path:
            return self._raw(b"Service Unavailable", [("Content-Type", "text/plain")], status=503)
        if "/database-down/" in self.path:
            return self._reply(503, envelope("database_unavailable", "The database is unavailable."))
        if "/dependency-down/" in self.path:
            return self._reply(503, envelope("service_unavailable", "A service this request needs is unavailable."))
        if "/throttled/" in self.path:
            return self._reply(429, envelope("rate_limited", "Slow down."), extra=THROTTLED_HEADERS)
        if self.path == "/internal/api-keys/exchange":
            return self._exchange()
        if self.path.startswith("/openapi.json"):
            return self._reply(200, openapi_document())
        if self.path.startswith("/api/user/.well-known/jwks.json") and JWKS is not None:
            return self._reply(200, JWKS)
        return self._reply(200, {"success": True, "data": record}, extra={"X-Upstream-Port": str(PORT)})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def _exchange(self):
        keys_file = LOG.with_suffix(".keys")
        keys = json.loads(keys_file.read_text()) if keys_file.exists() else {}
        known = keys.get(self.headers.get("X-API-Key", ""))
        if known is None:
            return self._reply(401, envelope("invalid_api_key", "The API key is invalid, revoked or expired."))
        from common.testing import TestKeys

        signer = TestKeys()
        signer.__dict__["_paths"] = (Path(sys.argv[4]), Path(sys.argv[3]))  # the test process's key pair
        token = signer.mint(
            user_id=known["user_id"], role=known["role"], api_key_id=known["id"], scope=known["scope"], lifetime=300
        )
        grant = {
            "id": known["id"],
            "name": known["name"],
            "owner_id": known["user_id"],
            "scopes": known["scope"].split(),
        }
        data = {"access": token, "expires_in": 300, "api_key": {**grant, "rate_limit": known["rate_limit"]}}
        return self._reply(200, {"success": True, "data": data})

    def _reply(self, status, body, extra=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _raw(self, data, headers, status=200):
        """Exactly these headers (with Content-Length): no Content-Type, repeats as given."""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunked(self, parts):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in [*parts, b""]:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))

    def _trickle(self, *, slow_head):
        body = b"x" * 60
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 60\r\n\r\n"
        if not slow_head:
            self.wfile.write(head)
            head = b""
        for byte in head + body:
            self.wfile.write(bytes([byte]))
            time.sleep(0.1)

    def log_message(self, *args):
        pass


def envelope(code, message):
    return {"success": False, "error": {"code": code, "message": message, "details": {}}, "correlation_id": "stub"}


def openapi_document():
    name = LOG.stem
    reply = {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}}
    return {
        "openapi": "3.0.3",
        "paths": {
            f"/api/{name}/things": {"get": {"security": [{"jwtAuth": []}], "responses": reply}},
            f"/api/{name}/things/": {"get": {"responses": reply}},
            f"/api/{name}/open": {"get": {"security": [{}], "responses": reply}},  # anyone, as login is
            f"/api/{name}/either": {"get": {"security": [{"jwtAuth": []}, {}], "responses": reply}},  # token optional
            "/internal/secrets": {"get": {"responses": reply}},
        },
        "components": {"schemas": {"Thing": {"type": "object", "properties": {"id": {"type": "integer"}}}}},
    }


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the gateway closing a kept-alive connection
            super().handle_error(request, client_address)


Server(("127.0.0.1", PORT), Handler).serve_forever()
