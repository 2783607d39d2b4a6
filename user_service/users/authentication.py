"""DRF authentication for user_service: the access token, checked against the user row."""

from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken

from common import scopes


class UserJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication with plain-message errors (the envelope carries them), and API keys' scopes."""

    def authenticate(self, request):
        try:
            authenticated = super().authenticate(request)
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed("Token is invalid or expired.") from exc
        except AuthenticationFailed as exc:
            raise exceptions.AuthenticationFailed("User is inactive or unknown.") from exc
        if authenticated is not None:
            scopes.check_request(request, authenticated[1].payload)  # no user_service endpoint names a scope
        return authenticated
