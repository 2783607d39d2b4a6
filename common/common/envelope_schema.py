"""The envelope's OpenAPI schemas and the reply headers every document states (no DRF: the gateway uses it too).

common.openapi's hook puts them on every service operation; the gateway's merge (gateway.openapi) adds
its own replies with them.
"""

from __future__ import annotations

NOT_ENVELOPED = "x-not-enveloped"
IDEMPOTENCY_KEY = "Idempotency-Key"
CORRELATION_HEADER = {
    "X-Correlation-ID": {
        "description": "The request's correlation id: the client's own if it sent one, else a new one.",
        "schema": {"type": "string"},
    }
}
RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
}
ERROR_DESCRIPTIONS = {
    400: "The request is invalid: `details` names each bad field.",
    401: "No valid credentials: a missing, expired or revoked token (or API key).",
    403: "Signed in, but this caller may not do this.",
    404: "No such resource (or not one this caller may see).",
    409: "The resource's state does not allow this now.",
    413: "The request body is too large.",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used before with a different request.",
    429: "Too many requests: wait for Retry-After seconds.",
    503: "A database or service this request needs is unavailable; try again shortly.",
}


def error_envelope(codes: list[str]) -> dict:
    """The failure envelope's schema, its `code` one of `codes`."""
    return {
        "type": "object",
        "required": ["success", "error", "correlation_id"],
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string", "enum": sorted(set(codes))},
                    "message": {"type": "string", "description": "For people; may change."},
                    "details": {
                        "type": "object",
                        "additionalProperties": True,
                        "description": "For a 400: each bad field and its messages.",
                    },
                },
            },
            "correlation_id": {"type": "string"},
        },
    }


def success_envelope(data: dict) -> dict:
    """The success envelope's schema around `data`'s."""
    return {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"type": "boolean", "enum": [True]}, "data": data},
    }
