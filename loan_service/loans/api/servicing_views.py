"""The /api/loan/ endpoints of a loan after its approval: disbursement, repayments, reversals, statements."""

from __future__ import annotations

import re

from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.views import APIView

from common import scopes
from common.api import accepted, created, ok, validated
from common.openapi import IDEMPOTENCY_KEY_PARAMETER
from common.pagination import PageOutput, PageParams, paginate
from common.permissions import IsAdmin, IsAdminApprovedAgentOrCustomer, IsAdminOrApprovedAgent
from loans import selectors, servicing, statements
from loans.api.serializers import LoanOutput, loan_data
from loans.errors import LoanNotActive, StatementNotReady
from loans.models import LoanTransaction, Statement

AMOUNT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,2})?$")


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": AMOUNT.pattern,
        "not": {"pattern": r"^0+(\.0+)?$"},  # more than 0
        "example": "150.25",
    }
)
class AmountField(serializers.DecimalField):
    """A positive amount of money: a string (or a whole number) with at most two decimals; never a float.

    Documented as the string it is normally sent as: at most 12 digits, two decimals, more than 0.
    """

    def __init__(self, **kwargs):
        super().__init__(max_digits=14, decimal_places=2, min_value=0, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int)):
            raise serializers.ValidationError('Give the amount as a string with at most two decimals, e.g. "150.25".')
        text = str(data).strip()
        if not AMOUNT.match(text):
            raise serializers.ValidationError('Must be a plain amount with at most two decimals, e.g. "150.25".')
        value = super().to_internal_value(text)
        if value <= 0:
            raise serializers.ValidationError("Must be greater than 0.")
        return value


class NoteInput(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=True, allow_blank=False)


class TransactionOutput(serializers.ModelSerializer):
    date = serializers.DateField(source="on")
    instalment = serializers.IntegerField(source="instalment_number", allow_null=True)
    reversed = serializers.BooleanField(source="is_reversed")
    reversal_of = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    principal = serializers.DecimalField(source="principal_portion", max_digits=16, decimal_places=2)
    interest = serializers.DecimalField(source="interest_portion", max_digits=16, decimal_places=2)
    fee = serializers.DecimalField(source="fee_portion", max_digits=16, decimal_places=2)
    overpaid = serializers.DecimalField(source="overpaid_portion", max_digits=16, decimal_places=2)

    class Meta:
        model = LoanTransaction
        fields = [
            "id",
            "kind",
            "amount",
            "date",
            "instalment",
            "principal",
            "interest",
            "fee",
            "overpaid",
            "note",
            "created_by",
            "created_at",
            "reversed",
            "reversed_at",
            "reversal_of",
        ]


class TransactionPageOutput(PageOutput):
    results = TransactionOutput(many=True)


@extend_schema_serializer(component_name="LoanTransactionReply")
class TransactionReply(serializers.Serializer):
    transaction = TransactionOutput()
    loan = LoanOutput()


def _transaction_reply(tx: LoanTransaction, loan) -> dict:
    return {"transaction": TransactionOutput(tx).data, "loan": loan_data(loan)}


class DisburseLoanView(APIView):
    required_scopes = {"POST": scopes.LOANS_DECIDE}  # what an API key needs (common.scopes)
    permission_classes = [IsAdmin]
    idempotency = "required"

    @extend_schema_serializer(component_name="DisburseLoanInput")
    class InputSerializer(serializers.Serializer):
        date = serializers.DateField(required=False)

    @extend_schema(request=InputSerializer, responses={200: LoanOutput}, parameters=[IDEMPOTENCY_KEY_PARAMETER])
    def post(self, request, loan_id: int):
        data = validated(self.InputSerializer, request.data)
        loan = servicing.disburse_loan(loan_id=loan_id, admin_id=request.user.id, on=data.get("date"), request=request)
        return ok(loan_data(loan))


class CancelLoanView(APIView):
    required_scopes = {"POST": scopes.LOANS_DECIDE}  # what an API key needs (common.scopes)
    permission_classes = [IsAdmin]

    @extend_schema_serializer(component_name="CancelLoanInput")
    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: LoanOutput})
    def post(self, request, loan_id: int):
        data = validated(self.InputSerializer, request.data)
        return ok(loan_data(servicing.cancel_loan(loan_id=loan_id, admin_id=request.user.id, **data, request=request)))


class WriteOffLoanView(APIView):
    required_scopes = {"POST": scopes.LOANS_DECIDE}  # what an API key needs (common.scopes)
    permission_classes = [IsAdmin]

    @extend_schema(request=NoteInput, responses={200: LoanOutput})
    def post(self, request, loan_id: int):
        data = validated(NoteInput, request.data)
        return ok(
            loan_data(servicing.write_off_loan(loan_id=loan_id, admin_id=request.user.id, **data, request=request))
        )


class RepaymentsView(APIView):
    # what an API key needs (common.scopes)
    required_scopes = {"GET": scopes.LOANS_READ, "POST": scopes.REPAYMENTS_WRITE}
    idempotency = "required"

    def get_permissions(self):
        return [IsAdminOrApprovedAgent()] if self.request.method == "POST" else [IsAdminApprovedAgentOrCustomer()]

    @extend_schema_serializer(component_name="RepaymentInput")
    class InputSerializer(serializers.Serializer):
        amount = AmountField()
        date = serializers.DateField(required=False)

    @extend_schema(request=InputSerializer, responses={201: TransactionReply}, parameters=[IDEMPOTENCY_KEY_PARAMETER])
    def post(self, request, loan_id: int):
        data = validated(self.InputSerializer, request.data)
        tx, loan = servicing.record_repayment(
            loan_id=loan_id, user_id=request.user.id, amount=data["amount"], on=data.get("date")
        )
        return created(_transaction_reply(tx, loan))

    @extend_schema(parameters=[PageParams], responses={200: TransactionPageOutput})
    def get(self, request, loan_id: int):
        loan = selectors.get_loan_for(request.user, loan_id)
        rows = selectors.transactions_of(loan, kind=LoanTransaction.Kind.REPAYMENT)
        return ok(paginate(rows, request.query_params, lambda page: TransactionOutput(page, many=True).data))


class TransactionsView(APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminApprovedAgentOrCustomer]

    @extend_schema(parameters=[PageParams], responses={200: TransactionPageOutput})
    def get(self, request, loan_id: int):
        loan = selectors.get_loan_for(request.user, loan_id)
        rows = selectors.transactions_of(loan)
        return ok(paginate(rows, request.query_params, lambda page: TransactionOutput(page, many=True).data))


class ReverseTransactionView(APIView):
    required_scopes = {"POST": scopes.LOANS_DECIDE}  # what an API key needs (common.scopes)
    permission_classes = [IsAdmin]

    @extend_schema(request=NoteInput, responses={201: TransactionReply})
    def post(self, request, loan_id: int, transaction_id: int):
        data = validated(NoteInput, request.data)
        reversal, loan = servicing.reverse_transaction(
            loan_id=loan_id, transaction_id=transaction_id, admin_id=request.user.id, **data, request=request
        )
        return created(_transaction_reply(reversal, loan))


class InstalmentsView(APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminApprovedAgentOrCustomer]

    @extend_schema_serializer(component_name="InstalmentRow")
    class OutputSerializer(serializers.Serializer):
        number = serializers.IntegerField()
        due_date = serializers.DateField()
        principal_due = serializers.DecimalField(max_digits=16, decimal_places=2)
        interest_due = serializers.DecimalField(max_digits=16, decimal_places=2)
        fee_due = serializers.DecimalField(max_digits=16, decimal_places=2)
        principal_paid = serializers.DecimalField(max_digits=16, decimal_places=2)
        interest_paid = serializers.DecimalField(max_digits=16, decimal_places=2)
        fee_paid = serializers.DecimalField(max_digits=16, decimal_places=2)
        unpaid = serializers.DecimalField(max_digits=16, decimal_places=2)
        paid_off_on = serializers.DateField(allow_null=True)
        status = serializers.SerializerMethodField()

        def get_status(self, row) -> str:
            if row.paid_off_on is not None:
                return "paid"
            return "overdue" if row.due_date < timezone.localdate() else "due"

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request, loan_id: int):
        loan = selectors.get_loan_for(request.user, loan_id)
        return ok(self.OutputSerializer(loan.instalments.order_by("number"), many=True).data)


class PayoffView(APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminApprovedAgentOrCustomer]

    class FilterSerializer(serializers.Serializer):
        date = serializers.DateField(required=False)

    @extend_schema_serializer(component_name="PayoffQuote")
    class OutputSerializer(serializers.Serializer):
        date = serializers.DateField()
        payoff = serializers.DecimalField(max_digits=16, decimal_places=2)
        principal = serializers.DecimalField(max_digits=16, decimal_places=2)
        interest = serializers.DecimalField(max_digits=16, decimal_places=2)
        fees = serializers.DecimalField(max_digits=16, decimal_places=2)

    @extend_schema(parameters=[FilterSerializer], responses={200: OutputSerializer})
    def get(self, request, loan_id: int):
        loan = selectors.get_loan_for(request.user, loan_id)
        on = validated(self.FilterSerializer, request.query_params).get("date") or timezone.localdate()
        parts = selectors.payoff_of(loan, on)
        quote = {"date": on, "payoff": parts.total, "principal": parts.principal, "interest": parts.interest}
        return ok(self.OutputSerializer({**quote, "fees": parts.fee}).data)


class StatementOutput(serializers.ModelSerializer):
    loan_id = serializers.IntegerField()
    download = serializers.SerializerMethodField()

    class Meta:
        model = Statement
        fields = ["id", "loan_id", "status", "created_at", "ready_at", "error", "download"]

    def get_download(self, statement) -> str | None:
        if statement.status != Statement.Status.READY:
            return None
        return f"/api/loan/{statement.loan_id}/statements/{statement.pk}/pdf"


class _JsonErrors:
    """A view that may answer with a PDF: `Accept: application/pdf` is not a 406, errors stay JSON."""

    def perform_content_negotiation(self, request, force=False):
        renderer = self.get_renderers()[0]
        return renderer, renderer.media_type


def _pdf(statement: Statement) -> FileResponse:
    if statement.status != Statement.Status.READY:
        raise StatementNotReady()
    name = f"loan-{statement.loan_id}-statement.pdf"
    return FileResponse(statement.file.open("rb"), content_type="application/pdf", filename=name)


class StatementsView(APIView):
    required_scopes = {"POST": scopes.LOANS_WRITE}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminApprovedAgentOrCustomer]

    @extend_schema(request=None, responses={202: StatementOutput})
    def post(self, request, loan_id: int):
        loan = selectors.get_loan_for(request.user, loan_id)
        if not loan.is_serviced:
            raise LoanNotActive("A statement can be made once the loan is disbursed.")
        return accepted(StatementOutput(statements.request_statement(loan=loan, user_id=request.user.id)).data)


class StatementView(_JsonErrors, APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminApprovedAgentOrCustomer]

    @extend_schema(
        responses={200: StatementOutput},
        description="The statement's state; with `Accept: application/pdf`, the PDF itself once ready (409 before).",
    )
    def get(self, request, loan_id: int, statement_id):
        loan = selectors.get_loan_for(request.user, loan_id)
        statement = statements.get_statement(loan=loan, statement_id=statement_id)
        if "application/pdf" in request.META.get("HTTP_ACCEPT", ""):
            return _pdf(statement)
        return ok(StatementOutput(statement).data)


class StatementPdfView(_JsonErrors, APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminApprovedAgentOrCustomer]

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, loan_id: int, statement_id):
        loan = selectors.get_loan_for(request.user, loan_id)
        return _pdf(statements.get_statement(loan=loan, statement_id=statement_id))
