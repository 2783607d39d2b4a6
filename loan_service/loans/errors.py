"""loan_service's error codes and domain errors; mapped to the envelope by common.errors."""

from enum import StrEnum

from common.errors import DomainError


class LoanErrorCode(StrEnum):
    LOAN_NOT_FOUND = "loan_not_found"
    ALREADY_DECIDED = "loan_already_decided"
    NOT_EDITABLE = "loan_not_editable"


class LoanNotFound(DomainError):
    status_code = 404
    code = LoanErrorCode.LOAN_NOT_FOUND
    default_message = "No such loan."


class LoanAlreadyDecided(DomainError):
    status_code = 409
    code = LoanErrorCode.ALREADY_DECIDED
    default_message = "This loan has already been decided."


class LoanNotEditable(DomainError):
    status_code = 409
    code = LoanErrorCode.NOT_EDITABLE
    default_message = "Only a NEW loan can be edited."
