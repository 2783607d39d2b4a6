"""The /api/loan/ endpoints of API.md: parse, call one service or selector, shape the reply."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from common import scopes
from common.api import MAX_ID, created, ok, validated
from common.errors import InvalidInput
from common.pagination import PageParams, paginate
from common.permissions import (
    ADMIN,
    IsAdmin,
    IsAdminApprovedAgentOrCustomer,
    IsAdminOrApprovedAgent,
    IsApprovedAgent,
    IsCustomer,
)
from loans import selectors, services
from loans.api.serializers import (
    MONEY,
    InstalmentOutput,
    LoanOutput,
    LoanPageOutput,
    LoanValueField,
    loan_data,
    loans_data,
)
from loans.models import Loan

# What a history entry's `change` can say: origination, then the servicing use cases.
HISTORY_CHANGES = [
    "created",
    "updated",
    "approved",
    "rejected",
    "disbursed",
    "cancelled",
    "repayment",
    "reversal",
    "written_off",
]


class CreateLoanView(APIView):
    required_scopes = {"POST": scopes.LOANS_WRITE}  # what an API key needs (common.scopes)
    permission_classes = [IsApprovedAgent]

    @extend_schema_serializer(component_name="CreateLoanInput")
    class InputSerializer(serializers.Serializer):
        customer_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
        principal = serializers.DecimalField(**MONEY)
        months = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={201: LoanOutput})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        loan = services.create_loan(agent_id=request.user.id, **data)
        return created(loan_data(loan))


class DecideLoanView(APIView):
    required_scopes = {"PUT": scopes.LOANS_DECIDE}  # what an API key needs (common.scopes)
    permission_classes = [IsAdmin]

    @extend_schema_serializer(component_name="DecideLoanInput")
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=[Loan.Status.APPROVED, Loan.Status.REJECTED])
        note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: LoanOutput})
    def put(self, request, loan_id: int):
        data = validated(self.InputSerializer, request.data)
        loan = services.decide_loan(loan_id=loan_id, admin_id=request.user.id, **data, request=request)
        return ok(loan_data(loan))


class EditLoanView(APIView):
    required_scopes = {"PUT": scopes.LOANS_WRITE}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminOrApprovedAgent]  # an agent only their own loans (services.edit_loan)

    @extend_schema_serializer(component_name="EditLoanInput")
    class InputSerializer(serializers.Serializer):
        principal = serializers.DecimalField(**MONEY, required=False)
        months = serializers.IntegerField(required=False)

    @extend_schema(request=InputSerializer, responses={200: LoanOutput})
    def put(self, request, loan_id: int):
        data = validated(self.InputSerializer, request.data)
        if not data:
            raise InvalidInput(details={"non_field_errors": ["Give principal, months or both."]})
        loan = services.edit_loan(
            loan_id=loan_id, editor_id=request.user.id, by_admin=request.user.role == ADMIN, **data, request=request
        )
        return ok(loan_data(loan))


class ListLoansView(APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminOrApprovedAgent]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Loan.Status.values, required=False)
        customer_id = serializers.IntegerField(required=False)
        agent_id = serializers.IntegerField(required=False)
        ordering = serializers.ChoiceField(
            choices=["created_at", "-created_at", "principal", "-principal"], required=False
        )
        overdue = serializers.BooleanField(required=False, allow_null=True, default=None)
        min_dpd = serializers.IntegerField(min_value=0, max_value=100_000, required=False)

    @extend_schema(parameters=[FilterSerializer, PageParams], responses={200: LoanPageOutput})
    def get(self, request):
        filters = validated(self.FilterSerializer, request.query_params)
        return ok(paginate(selectors.list_loans(**filters), request.query_params, loans_data))


class ListCustomerLoansView(APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsCustomer]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Loan.Status.values, required=False)
        overdue = serializers.BooleanField(required=False, allow_null=True, default=None)
        min_dpd = serializers.IntegerField(min_value=0, max_value=100_000, required=False)

    @extend_schema(parameters=[FilterSerializer, PageParams], responses={200: LoanPageOutput})
    def get(self, request):
        filters = validated(self.FilterSerializer, request.query_params)
        loans = selectors.list_loans_for_customer(customer_id=request.user.id, **filters)
        return ok(paginate(loans, request.query_params, loans_data))


class LoanDetailView(APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminApprovedAgentOrCustomer]

    @extend_schema(responses={200: LoanOutput})
    def get(self, request, loan_id: int):
        return ok(loan_data(selectors.get_loan_for(request.user, loan_id)))


class LoanScheduleView(APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminApprovedAgentOrCustomer]

    @extend_schema(responses={200: InstalmentOutput(many=True)})
    def get(self, request, loan_id: int):
        loan = selectors.get_loan_for(request.user, loan_id)
        return ok(InstalmentOutput(loan.repayment().instalments, many=True).data)


class LoanHistoryView(APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminOrApprovedAgent]

    @extend_schema_serializer(component_name="LoanHistoryEntry")
    class EntryOutput(serializers.Serializer):
        changed_at = serializers.DateTimeField()
        changed_by = serializers.IntegerField(allow_null=True)
        change = serializers.ChoiceField(choices=HISTORY_CHANGES)
        status = serializers.CharField()
        fields = serializers.DictField(child=serializers.ListField(child=LoanValueField(allow_null=True)))

    @extend_schema(responses={200: EntryOutput(many=True)})
    def get(self, request, loan_id: int):
        loan = selectors.get_loan_for(request.user, loan_id)
        return ok(self.EntryOutput(selectors.history_of(loan), many=True).data)


class QuoteView(APIView):
    required_scopes = {"POST": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="QuoteInput")
    class InputSerializer(serializers.Serializer):
        principal = serializers.DecimalField(**MONEY)
        months = serializers.IntegerField()

    @extend_schema_serializer(component_name="LoanQuote")
    class OutputSerializer(serializers.Serializer):
        principal = serializers.DecimalField(**MONEY)
        months = serializers.IntegerField()
        interest = serializers.DecimalField(max_digits=5, decimal_places=2)
        emi = serializers.DecimalField(**MONEY)
        amount = serializers.DecimalField(max_digits=16, decimal_places=2)
        total_interest = serializers.DecimalField(max_digits=16, decimal_places=2)
        schedule = InstalmentOutput(many=True)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        rate, cost = services.quote(**data)
        quote = {"interest": rate, "emi": cost.emi, "amount": cost.amount, "total_interest": cost.total_interest}
        return ok(self.OutputSerializer({**data, **quote, "schedule": cost.instalments}).data)
