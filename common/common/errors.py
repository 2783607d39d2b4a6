"""The error envelope of API.md, for domain errors, DRF errors, 404 and 500 alike."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from common.correlation import get_correlation_id
from common.ratelimit import rate_limit_headers

logger = logging.getLogger("lms.errors")


class ErrorCode(StrEnum):
    """Codes any service may answer with; each service adds its own enum beside this one."""

    VALIDATION_ERROR = "validation_error"
    MALFORMED_JSON = "malformed_json"
    NOT_AUTHENTICATED = "not_authenticated"
    INVALID_TOKEN = "invalid_token"
    PERMISSION_DENIED = "permission_denied"
    AGENT_NOT_APPROVED = "agent_not_approved"
    AGENT_REJECTED = "agent_rejected"
    INSUFFICIENT_SCOPE = "insufficient_scope"  # an API key without the scope the endpoint needs
    INVALID_API_KEY = "invalid_api_key"  # unknown, revoked or expired X-API-Key
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    BAD_UPSTREAM_RESPONSE = "bad_upstream_response"
    UPSTREAM_REPLY_TOO_LARGE = "upstream_reply_too_large"
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_REQUEST_IN_PROGRESS = "idempotency_request_in_progress"


# Said both by user_service (a rejected agent signs in) and by the role permissions (a rejected agent calls).
AGENT_REJECTED_MESSAGE = "Your agent account was rejected by an admin."


class DomainError(Exception):
    """A rule of the domain was broken; carries its HTTP status and stable code.

    Subclasses set `status_code`, `code` and `default_message`; raise them
    where the rule lives and let the exception handler build the reply.
    """

    status_code: int = 400
    code: str = ErrorCode.VALIDATION_ERROR
    default_message: str = "The request cannot be completed."

    def __init__(self, message: str | None = None, *, details: dict | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class InvalidInput(DomainError):
    """Input that passed parsing but breaks a rule; `details` names the fields."""

    status_code = 400
    code = ErrorCode.VALIDATION_ERROR
    default_message = "The request is invalid."

    @classmethod
    def on(cls, field: str, message: str) -> InvalidInput:
        """An error on a single field."""
        return cls(details={field: [message]})


class UpstreamUnavailable(DomainError):
    """A service this one depends on did not answer (down, or its circuit is open)."""

    status_code = 503
    code = ErrorCode.SERVICE_UNAVAILABLE
    default_message = "A service this request needs is unavailable. Try again shortly."


def error_body(code: str, message: str, details: dict | None = None) -> dict[str, Any]:
    """The failure envelope."""
    return {
        "success": False,
        "error": {"code": str(code), "message": message, "details": details or {}},
        "correlation_id": get_correlation_id(),
    }


def error_response(status: int, code: str, message: str, details: dict | None = None, headers=None) -> Response:
    """A DRF response carrying the failure envelope."""
    return Response(error_body(code, message, details), status=status, headers=headers)


def _field_errors(detail: Any) -> dict[str, list[str]]:
    """DRF's nested validation detail flattened to {field: [messages]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for field, value in detail.items():
            if isinstance(value, dict):
                for sub_field, messages in _field_errors(value).items():
                    flat[f"{field}.{sub_field}"] = messages
            elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
                # A list of nested objects (many=True): one dotted name per item and field, by index.
                for sub_field, messages in _field_errors(_indexed(value)).items():
                    flat[f"{field}.{sub_field}"] = messages
            elif isinstance(value, list):
                flat[str(field)] = [str(item) for item in value]
            else:
                flat[str(field)] = [str(value)]
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict) for item in detail):
        return _field_errors(_indexed(detail))
    if isinstance(detail, list):
        return {"non_field_errors": [str(item) for item in detail]}
    return {"non_field_errors": [str(detail)]}


def _indexed(items: list) -> dict[str, Any]:
    """The items of a list of errors by index, leaving out the items without errors."""
    return {str(index): item for index, item in enumerate(items) if item}


_DRF_CODES: list[tuple[type[Exception], int, str]] = [
    (drf.NotAuthenticated, 401, ErrorCode.NOT_AUTHENTICATED),
    (drf.AuthenticationFailed, 401, ErrorCode.INVALID_TOKEN),
    (drf.PermissionDenied, 403, ErrorCode.PERMISSION_DENIED),
    (drf.NotFound, 404, ErrorCode.NOT_FOUND),
    (drf.MethodNotAllowed, 405, ErrorCode.METHOD_NOT_ALLOWED),
    (drf.NotAcceptable, 406, ErrorCode.NOT_ACCEPTABLE),
    (drf.UnsupportedMediaType, 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (drf.ParseError, 400, ErrorCode.MALFORMED_JSON),
    (drf.Throttled, 429, ErrorCode.RATE_LIMITED),
]


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every error becomes the envelope, never HTML or a trace."""
    if isinstance(exc, DomainError):
        return error_response(exc.status_code, exc.code, exc.message, exc.details)
    if isinstance(exc, drf.ValidationError):
        return error_response(400, ErrorCode.VALIDATION_ERROR, "The request is invalid.", _field_errors(exc.detail))
    if isinstance(exc, Http404):
        return error_response(404, ErrorCode.NOT_FOUND, "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return error_response(403, ErrorCode.PERMISSION_DENIED, "You do not have permission to do this.")
    if isinstance(exc, RequestDataTooBig):
        return error_response(413, ErrorCode.PAYLOAD_TOO_LARGE, "The request body is too large.")
    for exc_class, status, code in _DRF_CODES:
        if isinstance(exc, exc_class):
            headers = _auth_headers(exc, context)
            if isinstance(exc, drf.Throttled):
                headers.update(rate_limit_headers(exc.wait, context))
            detail = exc.detail if isinstance(exc, drf.APIException) else str(exc)
            return error_response(status, _specific_code(detail) or code, _message(detail), headers=headers)
    if isinstance(exc, drf.APIException):
        return error_response(exc.status_code, exc.default_code, _message(exc.detail))
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("database unavailable", exc_info=exc)
        return error_response(503, ErrorCode.DATABASE_UNAVAILABLE, "The database is unavailable. Try again shortly.")
    logger.exception("unhandled error", exc_info=exc)
    return error_response(500, ErrorCode.INTERNAL_ERROR, "An unexpected error occurred.")


def _specific_code(detail: Any) -> str | None:
    """A permission's own code (`agent_not_approved`) when it set one of ours."""
    code = getattr(detail, "code", None)
    return code if code in ErrorCode._value2member_map_ else None


def _message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return str(detail[0])
    if isinstance(detail, dict):
        return "The request is invalid."
    return str(detail)


def _auth_headers(exc: Exception, context: dict) -> dict[str, str]:
    if not isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return {}
    view = context.get("view")
    request = context.get("request")
    if view is None or request is None:
        return {}
    authenticate_header = view.get_authenticate_header(request)
    return {"WWW-Authenticate": authenticate_header} if authenticate_header else {}


def json_error(status: int, code: str, message: str) -> JsonResponse:
    """The envelope as a plain Django response, for code outside DRF views."""
    return JsonResponse(error_body(code, message), status=status)


def handler400(request, exception=None):
    """Django's handler400: the envelope instead of an HTML page."""
    return json_error(400, ErrorCode.VALIDATION_ERROR, "Bad request.")


def handler403(request, exception=None):
    """Django's handler403."""
    return json_error(403, ErrorCode.PERMISSION_DENIED, "You do not have permission to do this.")


def handler404(request, exception=None):
    """Django's handler404."""
    return json_error(404, ErrorCode.NOT_FOUND, "Not found.")


def handler500(request):
    """Django's handler500: no stack trace reaches a client."""
    return json_error(500, ErrorCode.INTERNAL_ERROR, "An unexpected error occurred.")
