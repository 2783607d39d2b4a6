"""A tiny JSON HTTP client for the end-to-end tests (standard library, no retries, short timeouts)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float = 0.0

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def data(self):
        return self.json["data"]

    @property
    def error_code(self) -> str:
        return self.json["error"]["code"]


@dataclass
class Client:
    base_url: str
    token: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 15.0

    def as_token(self, token: str) -> Client:
        return Client(self.base_url, token, dict(self.headers), self.timeout)

    def request(
        self,
        method: str,
        path: str,
        body=None,
        *,
        headers: dict | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Reply:
        import time

        all_headers = {"Accept": "application/json", **self.headers, **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            all_headers.setdefault("Content-Type", content_type)
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method, headers=all_headers)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Reply(response.status, dict(response.headers), response.read(), time.monotonic() - started)
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), error.read(), time.monotonic() - started)

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body=None, **kwargs) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body=None, **kwargs) -> Reply:
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs) -> Reply:
        return self.request("DELETE", path, **kwargs)
