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
    INVALID_MFA_CODE = "invalid_mfa_code"
    MFA_CHALLENGE_INVALID = "mfa_challenge_invalid"
    MFA_ALREADY_ENABLED = "mfa_already_enabled"
    MFA_NOT_ENABLED = "mfa_not_enabled"
    MFA_NOT_STARTED = "mfa_not_started"
    SESSION_NOT_FOUND = "session_not_found"
    CANNOT_RESET_OWN_FACTOR = "cannot_reset_own_factor"
    API_KEY_NOT_FOUND = "api_key_not_found"
    API_KEY_REVOKED = "api_key_revoked"


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

    def __init__(self, field: str = "old_password") -> None:
        super().__init__(details={field: ["The current password is incorrect."]})


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


class InvalidMfaCode(DomainError):
    """A wrong, reused or expired second-factor code: a 400 on `code` (the caller may try again)."""

    status_code = 400
    code = UserErrorCode.INVALID_MFA_CODE
    default_message = "The authentication code is wrong or was already used."

    def __init__(self) -> None:
        super().__init__(details={"code": [self.default_message]})


class MfaChallengeInvalid(DomainError):
    status_code = 400
    code = UserErrorCode.MFA_CHALLENGE_INVALID
    default_message = "This sign-in has expired or was already completed. Sign in again."

    def __init__(self) -> None:
        super().__init__(details={"challenge": [self.default_message]})


class MfaAlreadyEnabled(DomainError):
    status_code = 409
    code = UserErrorCode.MFA_ALREADY_ENABLED
    default_message = "A second factor is already set up. Disable it first to set up another."


class MfaNotEnabled(DomainError):
    status_code = 409
    code = UserErrorCode.MFA_NOT_ENABLED
    default_message = "No second factor is set up for this account."


class MfaNotStarted(DomainError):
    status_code = 409
    code = UserErrorCode.MFA_NOT_STARTED
    default_message = "Set up the second factor first (its secret), then confirm it with a code."


class SessionNotFound(DomainError):
    status_code = 404
    code = UserErrorCode.SESSION_NOT_FOUND
    default_message = "No such active session."


class CannotResetOwnFactor(DomainError):
    status_code = 409
    code = UserErrorCode.CANNOT_RESET_OWN_FACTOR
    default_message = "An admin turns their own second factor off with the password and a code (mfa/totp/disable)."


class ApiKeyNotFound(DomainError):
    status_code = 404
    code = UserErrorCode.API_KEY_NOT_FOUND
    default_message = "No such API key."


class ApiKeyRevoked(DomainError):
    status_code = 409
    code = UserErrorCode.API_KEY_REVOKED
    default_message = "This API key is revoked; create a new one."


class InvalidApiKey(DomainError):
    """One answer for an unknown, wrong, revoked or expired key, or one whose owner can no longer act."""

    status_code = 401
    code = ErrorCode.INVALID_API_KEY
    default_message = "The API key is invalid, revoked or expired."
