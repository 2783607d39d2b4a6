"""The shapes more than one loan view returns: a loan, a page of loans, a schedule row."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import POSITIVE_INT_MAX, POSITIVE_SMALL_INT_MAX
from common.pagination import PageOutput
from loans.models import LOAN_FIELDS, Loan

MONEY = {"max_digits": 14, "decimal_places": 2}


class LoanOutput(serializers.ModelSerializer):
    class Meta:
        model = Loan
        fields = LOAN_FIELDS
        extra_kwargs = {
            "months": {"max_value": POSITIVE_SMALL_INT_MAX},
            "days_past_due": {"max_value": POSITIVE_INT_MAX},
        }


def _when(value) -> str | None:
    """A date or datetime as DRF writes it (ISO 8601, UTC as Z)."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def written(value):
    """Any loan field's value as the loan object writes it: money with two decimals, dates like DRF."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):  # datetimes too
        return _when(value)
    return value


@extend_schema_field(OpenApiTypes.ANY)
class LoanValueField(serializers.Field):
    """One value of a loan field (a history entry's old or new value), written like the loan object."""

    def to_representation(self, value):
        return written(value)


def loan_data(loan: Loan) -> dict:
    """LoanOutput's shape, built directly: lists of loans are the hot path and DRF's per-field work dominated it."""
    return {name: written(getattr(loan, name)) for name in LOAN_FIELDS}


def loans_data(loans) -> list[dict]:
    """A page's rows in LoanOutput's shape."""
    return [loan_data(loan) for loan in loans]


class LoanPageOutput(PageOutput):
    """API.md's page of loans (documentation only: pages are built by common.pagination.paginate)."""

    results = LoanOutput(many=True)


class InstalmentOutput(serializers.Serializer):
    month = serializers.IntegerField()
    due_date = serializers.DateField(allow_null=True)
    payment = serializers.DecimalField(**MONEY)
    principal = serializers.DecimalField(**MONEY)
    interest = serializers.DecimalField(**MONEY)
    balance = serializers.DecimalField(**MONEY)
