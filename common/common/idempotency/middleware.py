"""The Idempotency-Key header (IETF httpapi draft, Stripe's behaviour) on every API write of a service.

A key is scoped to its caller: the user of a valid bearer token, else the client address. The first
request with a key runs; its status, body and Content-Type are stored in the same transaction as its
work, and a repeat of the same request gets that reply again with `Idempotent-Replayed: true`. A view
opts in or out with a class attribute: `idempotency = "required"` or `idempotency = "exempt"`.
"""

from __future__ import annotations

import hashlib
import json
import logging

from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from common.authentication import bearer_token, get_verifier
from common.errors import ErrorCode, json_error
from common.idempotency import MAX_KEY_LENGTH, records
from common.idempotency.models import IdempotencyKey
from common.tokens import InvalidToken

logger = logging.getLogger("lms.idempotency")

META_KEY = "HTTP_IDEMPOTENCY_KEY"
REPLAYED_HEADER = "Idempotent-Replayed"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_SCOPE_LENGTH = 255
REQUIRED = "required"
EXEMPT = "exempt"


class IdempotencyMiddleware:
    """Runs a write with an Idempotency-Key once, and answers its repeats with the stored reply.

    Innermost in MIDDLEWARE: its transaction covers only the view (as ATOMIC_REQUESTS would), and its
    own answers (replays, 409, 422) still pass every other middleware on their way out.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = _api_view(request) if request.method in WRITE_METHODS else None
        mode = getattr(match.func.cls, "idempotency", "") if match else EXEMPT
        raw = request.META.get(META_KEY)
        if mode == EXEMPT or (raw is None and mode != REQUIRED):
            return self.get_response(request)
        if raw is None:
            # Who may not call the view at all hears that first (401, 403, 405), as without the requirement.
            refusal = _refusal(request, match)
            if refusal is not None:
                return refusal
            return json_error(400, ErrorCode.IDEMPOTENCY_KEY_REQUIRED, "This request needs an Idempotency-Key header.")
        scope = caller_scope(request)
        if scope is None:  # a bad token: the view answers 401, and nothing is stored
            return self.get_response(request)
        key = parse_key(raw)
        if key is None:
            message = "Idempotency-Key must be 1 to 255 printable ASCII characters."
            return json_error(400, ErrorCode.INVALID_IDEMPOTENCY_KEY, message)
        try:
            return self._once(request, scope=scope, key=key)
        except (OperationalError, InterfaceError) as exc:
            logger.error("database unavailable", exc_info=exc)
            return json_error(503, ErrorCode.DATABASE_UNAVAILABLE, "The database is unavailable. Try again shortly.")

    def _once(self, request: HttpRequest, *, scope: str, key: str) -> HttpResponse:
        outcome, record = records.claim(scope=scope, key=key, fingerprint=request_fingerprint(request))
        if outcome is records.Outcome.RUN and record is not None:
            return self._run(request, record)
        if outcome is records.Outcome.REPLAY and record is not None:
            return replay(record)
        if outcome is records.Outcome.REUSED:
            message = "This Idempotency-Key was already used for a different request."
            return json_error(422, ErrorCode.IDEMPOTENCY_KEY_REUSED, message)
        return _in_progress()

    def _run(self, request: HttpRequest, record: IdempotencyKey) -> HttpResponse:
        """The view and the record of its reply in one transaction: both happen, or neither."""
        stored = False
        try:
            with transaction.atomic():
                response = self.get_response(request)
                if not _keeps(response) or transaction.get_rollback():
                    transaction.set_rollback(True)  # the client may retry: nothing of this attempt stays
                    return response
                reply = {"status": response.status_code, "content_type": response.get("Content-Type", "")}
                if not records.finish(record, **reply, body=_body(response)):
                    transaction.set_rollback(True)  # another request took the key over: its run is the one kept
                    return _in_progress()
                stored = True
                return response
        finally:
            if not stored:
                records.release(record)


def _api_view(request: HttpRequest) -> ResolverMatch | None:
    """Where the path resolves, if to a DRF view (its function carries `cls`); None off the API."""
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return None
    view_class = getattr(match.func, "cls", None)
    if not (isinstance(view_class, type) and issubclass(view_class, APIView)):
        return None  # the admin, /health, /metrics: not the API
    return match


def _refusal(request: HttpRequest, match: ResolverMatch) -> HttpResponse | None:
    """The view's own answer if it refuses this caller before its handler runs (authentication, permission,
    no such method; throttles are not counted), else None."""
    view = match.func.cls(**match.func.initkwargs)
    view.args, view.kwargs, view.headers = match.args, match.kwargs, view.default_response_headers
    drf_request = view.request = view.initialize_request(request, *match.args, **match.kwargs)
    try:
        view.perform_authentication(drf_request)
        view.check_permissions(drf_request)
        if not hasattr(view, (request.method or "").lower()):
            view.http_method_not_allowed(drf_request)
    except Exception as exc:  # noqa: BLE001 - the view's exception handler answers, as it would in the view
        response = view.finalize_response(drf_request, view.handle_exception(exc), *match.args, **match.kwargs)
        return response.render()
    return None


def parse_key(raw: str) -> str | None:
    """The key of the header, bare (Stripe) or a quoted string (the draft); None unless 1-255 printable ASCII."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in value):
        return None
    return value


def caller_scope(request: HttpRequest) -> str | None:
    """`user:<id>` for a valid bearer token, `anonymous:<address>` without one; None for a bad token."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        # The client's address as DRF's throttles take it: the NUM_PROXIES-th X-Forwarded-For entry from the right.
        scope = f"anonymous:{BaseThrottle().get_ident(request) or ''}"
        if len(scope) > MAX_SCOPE_LENGTH:
            scope = f"anonymous:sha256:{hashlib.sha256(scope.encode()).hexdigest()}"
        return scope
    token = bearer_token(header)
    if token is None:
        return None
    try:
        claims = get_verifier().verify(token, expected_type="access")
    except InvalidToken:
        return None
    return f"user:{claims.user_id}"


def request_fingerprint(request: HttpRequest) -> str:
    """SHA-256 of method, path, query string and body (a JSON body canonically: parsed, keys sorted)."""
    digest = hashlib.sha256()
    for part in (request.method or "", request.path, request.META.get("QUERY_STRING", "")):
        digest.update(part.encode("utf-8", "backslashreplace") + b"\0")
    digest.update(_canonical_body(request))
    return digest.hexdigest()


def _canonical_body(request: HttpRequest) -> bytes:
    body = request.body
    content_type = request.content_type or ""
    if body and (content_type == "application/json" or content_type.endswith("+json")):
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            return b"raw\0" + body
        return b"json\0" + json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    return b"raw\0" + body


def _keeps(response: HttpResponse) -> bool:
    """5xx and 429 say "try again": they are not replayed. Every other reply is, 4xx included."""
    return response.status_code < 500 and response.status_code != 429


def _body(response: HttpResponse) -> bytes:
    if not response.streaming:
        return response.content
    body = b"".join(response.streaming_content)  # read once to store it, then handed on as it was
    response.streaming_content = [body]
    return body


def replay(record: IdempotencyKey) -> HttpResponse:
    """The stored reply of the first request, marked as replayed."""
    response = HttpResponse(bytes(record.response_body), status=record.response_status)
    if record.response_content_type:
        response["Content-Type"] = record.response_content_type
    else:
        del response["Content-Type"]
    response[REPLAYED_HEADER] = "true"
    return response


def _in_progress() -> HttpResponse:
    message = "A request with this Idempotency-Key is still being processed. Try again shortly."
    return json_error(409, ErrorCode.IDEMPOTENCY_REQUEST_IN_PROGRESS, message)
