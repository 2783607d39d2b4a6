"""drf-spectacular extensions for what `common` provides: the bearer JWT of ServiceJWTAuthentication.

A service imports this module once (in its AppConfig.ready) so its OpenAPI document names the
security scheme instead of warning that it cannot resolve the authenticator.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ServiceJWTScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <RS256 access token from user_service>`."""

    target_class = "common.authentication.ServiceJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
