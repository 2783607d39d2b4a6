"""The Django REST framework defaults every service shares."""

from __future__ import annotations


def rest_framework_settings(*, authentication: list[str], throttle_rates: dict[str, str] | None = None) -> dict:
    """REST_FRAMEWORK: JSON only, authenticated by default, errors in the envelope, OpenAPI via drf-spectacular."""
    return {
        "DEFAULT_AUTHENTICATION_CLASSES": authentication,
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        "DEFAULT_RENDERER_CLASSES": ["common.renderers.DecimalSafeJSONRenderer"],
        "EXCEPTION_HANDLER": "common.errors.exception_handler",
        "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        "DEFAULT_THROTTLE_RATES": throttle_rates or {},
        "UNAUTHENTICATED_USER": None,
        "COERCE_DECIMAL_TO_STRING": True,
    }


def spectacular_settings(*, title: str, description: str) -> dict:
    """SPECTACULAR_SETTINGS for a service's OpenAPI document."""
    return {
        "TITLE": title,
        "DESCRIPTION": description,
        "VERSION": "1.0.0",
        "SERVE_INCLUDE_SCHEMA": False,
        "COMPONENT_SPLIT_REQUEST": True,
    }
