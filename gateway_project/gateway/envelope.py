"""The gateway's own refusals in the API envelope, where Django or Ninja would answer in HTML."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from django.http import HttpRequest, HttpResponse

from common.errors import ErrorCode, json_error


class GatewayErrorCode(StrEnum):
    """Codes only the gateway answers with, beside common's ErrorCode."""

    REQUEST_TIMEOUT = "request_timeout"  # 408: the body did not arrive within GATEWAY_BODY_READ_TIMEOUT


class MethodNotAllowedEnvelope:
    """A 405 of the gateway's own routing becomes the envelope (`Allow` kept); an upstream's passes unchanged."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or getattr(response, "from_upstream", False):
            return response
        refusal = json_error(405, ErrorCode.METHOD_NOT_ALLOWED, f"Method {request.method} is not allowed here.")
        if response.has_header("Allow"):
            refusal["Allow"] = response["Allow"]
        return refusal
