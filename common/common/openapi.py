"""drf-spectacular extensions: the bearer JWT of ServiceJWTAuthentication and of user_service's simplejwt.

Every service imports this module once (in its AppConfig.ready) so its OpenAPI document names the
security scheme of every authenticated operation instead of warning that it cannot resolve the
authenticator (an operation with no security listed reads as needing no token).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter

from common.envelope_schema import (
    CORRELATION_HEADER,
    ERROR_DESCRIPTIONS,
    IDEMPOTENCY_KEY,
    NOT_ENVELOPED,
    RETRY_AFTER_HEADER,
    error_envelope,
    success_envelope,
)
from common.idempotency import MAX_KEY_LENGTH

# The header as common.idempotency.middleware.parse_key takes it, bare: 1 to 255 printable ASCII characters,
# neither starting nor ending with a space (they are stripped) nor starting with a quote (the quoted form).
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_KEY,
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": r"^[!#-~]([ -~]*[!-~])?$"},
    OpenApiParameter.HEADER,
    required=True,
    description="A unique key per operation (1 to 255 printable ASCII characters); a repeat replays the first reply.",
)


class ServiceJWTScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <RS256 access token from user_service>`."""

    target_class = "common.authentication.ServiceJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


class SimpleJWTScheme(ServiceJWTScheme):
    """user_service's own tokens: simplejwt's JWTAuthentication and its subclasses, the same bearer scheme."""

    target_class = "rest_framework_simplejwt.authentication.JWTAuthentication"
    match_subclasses = True
    priority = 1  # over drf-spectacular's contrib extension, which does not match subclasses


# --- What every reply really looks like: the envelope, the error statuses, the headers -------------------
#
# A postprocessing hook (SPECTACULAR_SETTINGS, common.drf) rewrites the generated document once, from the
# code's own facts, rather than each view repeating them: every JSON success reply is `{"success": true,
# "data": <the serializer's schema>}` (common.api.ok), every error reply the failure envelope with its
# stable codes (common.errors), and every reply carries X-Correlation-ID. An operation whose JSON reply is
# not enveloped (the JWKS) says so with `extend_schema(extensions={NOT_ENVELOPED: True})`.


def _generic_codes() -> dict[int, list[str]]:
    from common.errors import ErrorCode

    return {
        400: [ErrorCode.VALIDATION_ERROR, ErrorCode.MALFORMED_JSON],
        401: [ErrorCode.NOT_AUTHENTICATED, ErrorCode.INVALID_TOKEN, ErrorCode.INVALID_API_KEY],
        403: [
            ErrorCode.PERMISSION_DENIED,
            ErrorCode.AGENT_NOT_APPROVED,
            ErrorCode.AGENT_REJECTED,
            ErrorCode.INSUFFICIENT_SCOPE,
        ],
        404: [ErrorCode.NOT_FOUND],
        413: [ErrorCode.PAYLOAD_TOO_LARGE],
        415: [ErrorCode.UNSUPPORTED_MEDIA_TYPE],
        429: [ErrorCode.RATE_LIMITED],
        503: [ErrorCode.DATABASE_UNAVAILABLE, ErrorCode.SERVICE_UNAVAILABLE],
    }


def _idempotency_codes() -> dict[int, list[str]]:
    from common.errors import ErrorCode

    return {
        400: [ErrorCode.IDEMPOTENCY_KEY_REQUIRED, ErrorCode.INVALID_IDEMPOTENCY_KEY],
        409: [ErrorCode.IDEMPOTENCY_REQUEST_IN_PROGRESS],
        422: [ErrorCode.IDEMPOTENCY_KEY_REUSED],
    }


def _domain_codes() -> dict[int, list[str]]:
    """The status and code of every DomainError this process has imported (its views import them all)."""
    from common.errors import DomainError

    found: dict[int, set[str]] = {}
    pending = list(DomainError.__subclasses__())
    while pending:
        error = pending.pop()
        pending += error.__subclasses__()
        found.setdefault(int(error.status_code), set()).add(str(error.code))
    return {status: sorted(codes) for status, codes in found.items()}


def error_statuses(path: str, method: str, operation: dict, domain: dict[int, list[str]]) -> dict[int, list[str]]:
    """The error statuses `operation` can answer with, each with its codes."""
    generic, secured = _generic_codes(), any(operation.get("security") or [])
    parameters = operation.get("parameters") or []
    statuses = {429, 503}
    if secured:
        statuses |= {401, 403}
    if parameters or "requestBody" in operation:
        statuses.add(400)
    if "{" in path:
        statuses.add(404)
    if "requestBody" in operation:
        statuses |= {413, 415}
    statuses |= set(domain)  # a read can be refused by the loan's state too (a payoff of a closed loan: 409)
    codes = {status: list(generic.get(status, [])) for status in statuses}
    if any(parameter.get("name") == IDEMPOTENCY_KEY for parameter in parameters):
        for status, more in _idempotency_codes().items():
            codes.setdefault(status, []).extend(more)
    for status in codes:
        codes[status] += domain.get(status, [])
    return {status: sorted(set(found)) for status, found in codes.items() if found and (status < 500 or status == 503)}


def without_slash_twins(endpoints: list, **kwargs) -> list:
    """drf-spectacular preprocessing hook: `/x/` is listed as `/x` alone (common.api.both_slashes serves both)."""
    paths = {path for path, *_ in endpoints}
    return [endpoint for endpoint in endpoints if not (endpoint[0].endswith("/") and endpoint[0][:-1] in paths)]


def envelope_hook(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: the envelope on every reply, the error statuses, the headers."""
    domain = _domain_codes()
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            enveloped = not operation.pop(NOT_ENVELOPED, False)
            for status, reply in operation["responses"].items():
                content = reply.get("content", {}).get("application/json")
                if enveloped and str(status).startswith("2") and content and "schema" in content:
                    content["schema"] = success_envelope(content["schema"])
            for status, codes in error_statuses(path, method, operation, domain).items():
                reply = operation["responses"].setdefault(str(status), {})
                reply.setdefault("description", ERROR_DESCRIPTIONS.get(status, "An error."))
                reply["content"] = {"application/json": {"schema": error_envelope(codes)}}
                if status == 429:
                    reply.setdefault("headers", {}).update(RETRY_AFTER_HEADER)
            for reply in operation["responses"].values():
                reply.setdefault("headers", {}).update(CORRELATION_HEADER)
            operation["responses"] = dict(sorted(operation["responses"].items()))
    return result
