"""The Django REST framework defaults every service shares."""

from __future__ import annotations

from common.env import env_int
from common.version import API_VERSION


def rest_framework_settings(
    *, authentication: list[str], throttle_rates: dict[str, str] | None = None, num_proxies: int | None = None
) -> dict:
    """REST_FRAMEWORK: JSON only, authenticated by default, errors in the envelope, OpenAPI via drf-spectacular.

    `num_proxies` (default: the NUM_PROXIES variable, else 1, the gateway) is how many proxies in front
    of the service are trusted: throttles take the client's address from that entry of X-Forwarded-For,
    counted from the right, so a client cannot pick its own address by sending the header itself.
    """
    return {
        "DEFAULT_AUTHENTICATION_CLASSES": authentication,
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        "DEFAULT_RENDERER_CLASSES": ["common.renderers.DecimalSafeJSONRenderer"],
        "EXCEPTION_HANDLER": "common.errors.exception_handler",
        "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        "DEFAULT_THROTTLE_RATES": throttle_rates or {},
        "NUM_PROXIES": env_int("NUM_PROXIES", 1) if num_proxies is None else num_proxies,
        "UNAUTHENTICATED_USER": None,
        "COERCE_DECIMAL_TO_STRING": True,
    }


def spectacular_settings(*, title: str, description: str, enums: dict[str, str] | None = None) -> dict:
    """SPECTACULAR_SETTINGS for a service's OpenAPI document; `enums` names a choice set used in several places."""
    return {
        "ENUM_NAME_OVERRIDES": enums or {},
        "TITLE": title,
        "DESCRIPTION": description,
        "VERSION": API_VERSION,
        "SERVE_INCLUDE_SCHEMA": False,
        "COMPONENT_SPLIT_REQUEST": True,
        # Each path once, though both spellings work; the envelope, the error statuses and the headers every
        # reply has (common.openapi).
        "PREPROCESSING_HOOKS": ["common.openapi.without_slash_twins"],
        "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "common.openapi.envelope_hook"],
    }
