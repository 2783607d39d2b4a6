"""drf-spectacular extensions: the bearer JWT of ServiceJWTAuthentication and of user_service's simplejwt.

Every service imports this module once (in its AppConfig.ready) so its OpenAPI document names the
security scheme of every authenticated operation instead of warning that it cannot resolve the
authenticator (an operation with no security listed reads as needing no token).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
