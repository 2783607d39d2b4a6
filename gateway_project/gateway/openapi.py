"""One OpenAPI document of the whole public API: the gateway's own routes plus each service's schema."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any, cast

import urllib3

from common.envelope_schema import CORRELATION_HEADER, ERROR_DESCRIPTIONS, RETRY_AFTER_HEADER, error_envelope
from common.errors import ErrorCode
from gateway.envelope import GatewayErrorCode
from gateway.upstreams import upstreams

CACHE_SECONDS = 60.0
Document = dict[str, Any]
_cache: dict[str, Any] = {"at": float("-inf"), "document": None}
_lock = threading.Lock()
INTEGER = {"type": "integer"}
_REF = re.compile(r'"#/components/schemas/([^"]+)"')


def _service_schema(name: str) -> Document | None:
    for instance in upstreams()[name].instances:
        try:
            response = instance.pool.urlopen(
                "GET", "/openapi.json?format=json", timeout=urllib3.Timeout(connect=1.0, read=5.0), retries=False
            )
        except urllib3.exceptions.HTTPError:
            continue
        if response.status == 200:
            try:
                document = json.loads(response.data)
            except ValueError:
                continue
            if isinstance(document, dict) and isinstance(document.get("paths"), dict):
                return document
    return None


def _prefixed(name: str, document: Document) -> Document:
    """The document with its component names prefixed by the service, so two services cannot clash."""
    text = _REF.sub(lambda match: f'"#/components/schemas/{name}_{match.group(1)}"', json.dumps(document))
    renamed = json.loads(text)
    schemas = renamed.get("components", {}).get("schemas", {})
    renamed.setdefault("components", {})["schemas"] = {f"{name}_{key}": value for key, value in schemas.items()}
    return cast(Document, renamed)


def _public_security(operation: Document) -> None:
    """A service's security as the gateway's clients meet it: each scheme is the gateway's bearer token.

    An operation open to anyone (`[{}]`: login, signup, the JWKS) lists no security; one that takes a
    token but needs none keeps its anonymous alternative.
    """
    requirements = operation.pop("security", None) or []
    public = [{"bearerAuth": []} if requirement else {} for requirement in requirements]
    public = [requirement for index, requirement in enumerate(public) if requirement not in public[:index]]
    if any(public):
        operation["security"] = public


RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"description": "Requests allowed in the window of the tightest limit.", "schema": INTEGER},
    "RateLimit-Remaining": {"description": "Requests left in it.", "schema": INTEGER},
    "RateLimit-Reset": {"description": "Seconds until it is full again.", "schema": INTEGER},
}
GATEWAY_REPLIES = {  # status: (codes, description, whether only operations with a body can get it)
    400: ([ErrorCode.VALIDATION_ERROR], "The request is invalid.", False),
    408: ([GatewayErrorCode.REQUEST_TIMEOUT], "The request body was not sent in time.", True),
    413: ([ErrorCode.PAYLOAD_TOO_LARGE], ERROR_DESCRIPTIONS[413], True),
    429: ([ErrorCode.RATE_LIMITED], ERROR_DESCRIPTIONS[429], False),
    502: (
        [ErrorCode.BAD_UPSTREAM_RESPONSE, ErrorCode.UPSTREAM_REPLY_TOO_LARGE],
        "The service gave no usable answer.",
        False,
    ),
    503: ([ErrorCode.SERVICE_UNAVAILABLE], "The service is unavailable; try again shortly.", False),
    504: ([ErrorCode.UPSTREAM_TIMEOUT], "The service did not answer in time.", False),
}


def _gateway_replies(operation: Document) -> None:
    """The replies the gateway itself may give instead of the service's, and the headers it adds to all.

    A status the service documents too gets the gateway's codes added to its enum.
    """
    replies = operation.setdefault("responses", {})
    has_body = "requestBody" in operation
    for status, (codes, description, body_only) in GATEWAY_REPLIES.items():
        if body_only and not has_body:
            continue
        reply = replies.setdefault(str(status), {"description": description})
        schema = reply.get("content", {}).get("application/json", {}).get("schema", {})
        known = schema.get("properties", {}).get("error", {}).get("properties", {}).get("code", {}).get("enum", [])
        reply["content"] = {"application/json": {"schema": error_envelope([*known, *codes])}}
    for reply in replies.values():
        reply.setdefault("headers", {}).update({**CORRELATION_HEADER, **RATE_LIMIT_HEADERS})
    replies["429"]["headers"].update(RETRY_AFTER_HEADER)
    operation["responses"] = dict(sorted(replies.items()))


def merged(base: Document) -> Document:
    """`base` (the gateway's own schema) with every public path of every reachable service; cached a minute."""
    with _lock:
        if _cache["document"] is not None and time.monotonic() - _cache["at"] < CACHE_SECONDS:
            return cast(Document, _cache["document"])
    document: Document = json.loads(json.dumps(base))
    document.setdefault("components", {}).setdefault("schemas", {})
    document["components"]["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    missing = []
    for name in upstreams():
        schema = _service_schema(name)
        if schema is None:
            missing.append(name)
            continue
        schema = _prefixed(name, schema)
        for path, operations in schema.get("paths", {}).items():
            duplicate = path.endswith("/") and path.rstrip("/") in schema["paths"]  # both slashes work; list one
            if path.startswith("/api/") and "/internal/" not in path and not duplicate:
                for operation in operations.values():
                    if isinstance(operation, dict):
                        _public_security(operation)
                        _gateway_replies(operation)
                document["paths"][path] = operations
        document["components"]["schemas"].update(schema["components"]["schemas"])
    if missing:
        document["info"]["description"] = f"Unavailable right now, so not listed: {', '.join(missing)}."
        return document  # not cached: try again on the next request
    with _lock:
        _cache.update(at=time.monotonic(), document=document)
    return document
