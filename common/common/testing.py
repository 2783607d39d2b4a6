"""Test support for services that verify tokens: a throw-away key pair and a token minter.

Only tests import this. It signs tokens exactly as user_service does (RS256,
`kid`, `iss`, `aud`, token type), so a service's tests exercise its real
verification path.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from functools import cached_property
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization

from common.keys import generate_keypair, key_id, load_public_key

TEST_ISSUER = "lms-user-service"
TEST_AUDIENCE = "lms"


class TestKeys:
    """A key pair generated once per test process."""

    __test__ = False  # not a pytest test class

    @cached_property
    def _paths(self) -> tuple[Path, Path]:
        return generate_keypair(Path(tempfile.mkdtemp(prefix="lms-test-keys-")))

    @property
    def private_path(self) -> Path:
        return self._paths[0]

    @property
    def public_path(self) -> Path:
        return self._paths[1]

    @cached_property
    def private_key(self):
        return serialization.load_pem_private_key(self.private_path.read_bytes(), password=None)

    @cached_property
    def kid(self) -> str:
        return key_id(load_public_key(self.public_path.read_bytes()))

    def mint(
        self,
        *,
        user_id: int,
        role: str,
        is_approved: bool = True,
        token_type: str = "access",  # noqa: S107 - a claim value, not a password
        lifetime: int = 300,
        issuer: str = TEST_ISSUER,
        audience: str = TEST_AUDIENCE,
        **extra,
    ) -> str:
        """A signed token with the claims user_service puts in one."""
        now = int(time.time())
        claims = {
            "user_id": user_id,
            "role": role,
            "is_approved": is_approved,
            "token_type": token_type,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + lifetime,
            "iss": issuer,
            "aud": audience,
            **extra,
        }
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})


test_keys = TestKeys()


def skip_unless_postgres(items) -> None:
    """pytest hook body: mark tests tagged `postgres` skipped when the suite runs on SQLite."""
    import pytest
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def run_together(count: int, action) -> list:
    """Call `action(i)` for i in range(count) in as many threads, released at once; their results in order.

    Each thread closes its database connection when done, as Django expects of threads it did not start.
    """
    import threading

    from django.db import connection

    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = action(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def walk_by_cursor(client, path: str, *, between_pages=None) -> list[dict]:
    """Every page of the list at `path` (its `data`), following each page's next_cursor to the end.

    `between_pages(n)`, if given, runs after the n-th page is read and before the next one: the
    place to change the list in the middle of a walk.
    """
    from urllib.parse import quote

    def read(url: str) -> dict:
        response = client.get(url)
        assert response.status_code == 200, response.content
        return response.json()["data"]

    pages = [read(path)]
    while pages[-1]["next_cursor"] is not None:
        assert len(pages) < 10_000, "the walk does not end"
        if between_pages is not None:
            between_pages(len(pages))
        joiner = "&" if "?" in path else "?"
        pages.append(read(f"{path}{joiner}cursor={quote(pages[-1]['next_cursor'])}"))
    return pages
