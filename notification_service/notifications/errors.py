"""notification_service's error codes and domain errors; mapped to the envelope by common.errors."""

from enum import StrEnum

from common.errors import DomainError


class NotificationErrorCode(StrEnum):
    NOTIFICATION_NOT_FOUND = "notification_not_found"


class NotificationNotFound(DomainError):
    status_code = 404
    code = NotificationErrorCode.NOTIFICATION_NOT_FOUND
    default_message = "No such notification."


class TransientDeliveryError(Exception):
    """The provider may accept it later (connection refused, timeout, 4xx SMTP reply): retry."""


class PermanentDeliveryError(Exception):
    """Retrying cannot help (no address, rejected recipient): fail at once."""
