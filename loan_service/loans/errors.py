"""loan_service's error codes and domain errors; mapped to the envelope by common.errors."""

from enum import StrEnum

from common.errors import DomainError


class LoanErrorCode(StrEnum):
    LOAN_NOT_FOUND = "loan_not_found"
    ALREADY_DECIDED = "loan_already_decided"
    NOT_EDITABLE = "loan_not_editable"
    NOT_YOURS = "loan_not_yours"


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


class LoanNotYours(DomainError):
    status_code = 403
    code = LoanErrorCode.NOT_YOURS
    default_message = "Only the agent who requested this loan, or an admin, can edit it."


class ServicingErrorCode(StrEnum):
    NOT_DISBURSABLE = "loan_not_disbursable"
    NOT_CANCELLABLE = "loan_not_cancellable"
    DISBURSEMENT_WINDOW_OPEN = "loan_disbursement_window_open"
    NOT_ACTIVE = "loan_not_active"
    NOT_IN_ARREARS = "loan_not_in_arrears"
    TRANSACTION_NOT_FOUND = "transaction_not_found"
    NOT_REVERSIBLE = "transaction_not_reversible"
    ALREADY_REVERSED = "transaction_already_reversed"
    STATEMENT_NOT_FOUND = "statement_not_found"
    STATEMENT_NOT_READY = "statement_not_ready"


class LoanNotDisbursable(DomainError):
    status_code = 409
    code = ServicingErrorCode.NOT_DISBURSABLE
    default_message = "Only an APPROVED loan can be disbursed."


class LoanNotCancellable(DomainError):
    status_code = 409
    code = ServicingErrorCode.NOT_CANCELLABLE
    default_message = "Only an APPROVED loan that was never disbursed can be cancelled."


class DisbursementWindowOpen(DomainError):
    status_code = 409
    code = ServicingErrorCode.DISBURSEMENT_WINDOW_OPEN
    default_message = "This loan can still be disbursed; it can be cancelled once its disbursement window has passed."


class LoanNotActive(DomainError):
    status_code = 409
    code = ServicingErrorCode.NOT_ACTIVE
    default_message = "Only a DISBURSED loan takes repayments, reversals and write-offs."


class LoanNotInArrears(DomainError):
    status_code = 409
    code = ServicingErrorCode.NOT_IN_ARREARS
    default_message = "This loan is not far enough past due to be written off."


class TransactionNotFound(DomainError):
    status_code = 404
    code = ServicingErrorCode.TRANSACTION_NOT_FOUND
    default_message = "No such transaction on this loan."


class TransactionNotReversible(DomainError):
    status_code = 409
    code = ServicingErrorCode.NOT_REVERSIBLE
    default_message = "Only repayments and fees can be reversed."


class TransactionAlreadyReversed(DomainError):
    status_code = 409
    code = ServicingErrorCode.ALREADY_REVERSED
    default_message = "This transaction has already been reversed."


class StatementNotFound(DomainError):
    status_code = 404
    code = ServicingErrorCode.STATEMENT_NOT_FOUND
    default_message = "No such statement of this loan."


class StatementNotReady(DomainError):
    status_code = 409
    code = ServicingErrorCode.STATEMENT_NOT_READY
    default_message = "This statement is not ready yet."
