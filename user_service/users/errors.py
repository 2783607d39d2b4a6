"""user_service's error codes and domain errors; mapped to the envelope by common.errors."""

from enum import StrEnum

from common.errors import AGENT_REJECTED_MESSAGE, DomainError, ErrorCode


class UserErrorCode(StrEnum):
    EMAIL_TAKEN = "email_taken"
    INVALID_CREDENTIALS = "invalid_credentials"
    TOKEN_REVOKED = "token_revoked"
    WRONG_PASSWORD = "wrong_password"
    USER_NOT_FOUND = "user_not_found"
    AGENT_ALREADY_DECIDED = "agent_already_decided"
    INVALID_REFRESH_TOKEN = "invalid_refresh_token"
    REFRESH_TOKEN_ALREADY_REVOKED = "refresh_token_already_revoked"
    REFRESH_TOKEN_NOT_OWNED = "refresh_token_not_owned"
    CANNOT_DEACTIVATE_SELF = "cannot_deactivate_self"


class EmailTaken(DomainError):
    status_code = 409
    code = UserErrorCode.EMAIL_TAKEN
    default_message = "A user with this email already exists."


class InvalidCredentials(DomainError):
    status_code = 401
    code = UserErrorCode.INVALID_CREDENTIALS
    default_message = "Email or password is incorrect."


class AgentRejected(DomainError):
    status_code = 403
    code = ErrorCode.AGENT_REJECTED
    default_message = AGENT_REJECTED_MESSAGE


class TokenRevoked(DomainError):
    status_code = 401
    code = UserErrorCode.TOKEN_REVOKED
    default_message = "This token is no longer valid. Sign in again."


class WrongPassword(DomainError):
    status_code = 400
    code = UserErrorCode.WRONG_PASSWORD
    default_message = "The current password is incorrect."

    def __init__(self) -> None:
        super().__init__(details={"old_password": ["The current password is incorrect."]})


class UserNotFound(DomainError):
    status_code = 404
    code = UserErrorCode.USER_NOT_FOUND
    default_message = "No such user."


class AgentAlreadyDecided(DomainError):
    status_code = 409
    code = UserErrorCode.AGENT_ALREADY_DECIDED
    default_message = "Only an agent waiting for approval can be approved or rejected."


class CannotDeactivateSelf(DomainError):
    status_code = 409
    code = UserErrorCode.CANNOT_DEACTIVATE_SELF
    default_message = "An admin cannot deactivate their own account."


class _UnusableRefreshToken(DomainError):
    """The refresh token in a signed-in caller's body cannot be used: a 400 on that field, not a 401,
    since the caller's own access token is fine and signing in again would not help."""

    status_code = 400

    def __init__(self) -> None:
        super().__init__(details={"refresh": [self.default_message]})


class InvalidRefreshToken(_UnusableRefreshToken):
    code = UserErrorCode.INVALID_REFRESH_TOKEN
    default_message = "This refresh token is invalid or expired."


class RefreshTokenAlreadyRevoked(_UnusableRefreshToken):
    code = UserErrorCode.REFRESH_TOKEN_ALREADY_REVOKED
    default_message = "This refresh token is already revoked."


class RefreshTokenNotOwned(_UnusableRefreshToken):
    code = UserErrorCode.REFRESH_TOKEN_NOT_OWNED
    default_message = "This refresh token belongs to another user."
