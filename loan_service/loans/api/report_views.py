"""GET /api/loan/reports/...: the portfolio on a day and collections by month, as JSON or CSV.

Admins see the whole book; an approved agent sees the loans they requested.
"""

from __future__ import annotations

from datetime import date

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from common import scopes
from common.api import ok, validated
from common.permissions import ADMIN, IsAdminOrApprovedAgent
from common.tables import FORMATS, CsvOrJsonMixin
from loans import reports
from loans.models import STATUSES
from loans.schedule import add_months

MAX_MONTHS = 120
CSV_REPLY = OpenApiResponse(OpenApiTypes.STR, description="With ?format=csv: a header line and one line per row.")


def _agent_of(request) -> int | None:
    """None for an admin (the whole book), else the agent's own id."""
    return None if request.user.role == ADMIN else request.user.id


class ReportInput(serializers.Serializer):
    """A report's query: `format`, and `from` (a Python keyword, so declared in get_fields)."""

    format = serializers.ChoiceField(choices=FORMATS, required=False, help_text="csv: a CSV table (text/csv).")
    from_help = ""

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False, help_text=self.from_help)
        return fields


class PortfolioInput(ReportInput):
    as_of = serializers.DateField(required=False, help_text="The day, at its end (default today).")
    by = serializers.ChoiceField(choices=["agent"], required=False, help_text="agent: the figures per agent too.")
    from_help = "The period's first day (default the first of as_of's month)."

    def validate(self, attrs):
        today = timezone.localdate()
        as_of = attrs.setdefault("as_of", today)
        if as_of > today:
            raise serializers.ValidationError({"as_of": ["Must not be in the future."]})
        start = attrs.setdefault("from", as_of.replace(day=1))
        if start > as_of:
            raise serializers.ValidationError({"from": ["Must not be after as_of."]})
        return attrs


class CollectionsInput(ReportInput):
    to = serializers.DateField(required=False, help_text="The last day (default today).")
    from_help = "The first day (default the first of the month eleven months before to's)."

    def validate(self, attrs):
        end = attrs.setdefault("to", timezone.localdate())
        start = attrs.setdefault("from", add_months(end.replace(day=1), -11))
        if start > end:
            raise serializers.ValidationError({"from": ["Must not be after to."]})
        if len(reports.months_between(start, end)) > MAX_MONTHS:
            raise serializers.ValidationError({"from": [f"A report covers at most {MAX_MONTHS} months."]})
        return attrs


PORTFOLIO_COLUMNS = [
    "agent_id",
    "as_of",
    "from",
    "loans_total",
    *(f"{status.lower()}_{what}" for status in STATUSES for what in ("count", "principal")),
    "disbursed_principal",
    "outstanding_principal",
    "outstanding_interest",
    "outstanding_fees",
    "total_outstanding",
    "disbursed_in_period_count",
    "disbursed_in_period_principal",
    *(f"collected_{part}" for part in ("amount", "principal", "interest", "fees")),
    *(f"par{days}_principal" for days in reports.PAR_DAYS),
    *(f"par{days}" for days in reports.PAR_DAYS),
]
COLLECTION_COLUMNS = ["month", "due", "paid", "overdue", "written_off", "collected", "collection_rate"]


def _portfolio_row(agent, report: dict, figures: dict) -> list:
    return [
        agent,
        report["as_of"],
        report["from"],
        figures["loans_total"],
        *(figures["loans"][status][what] for status in STATUSES for what in ("count", "principal")),
        *(
            figures[name]
            for name in (
                "disbursed_principal",
                "outstanding_principal",
                "outstanding_interest",
                "outstanding_fees",
                "total_outstanding",
            )
        ),
        figures["disbursed_in_period"]["count"],
        figures["disbursed_in_period"]["principal"],
        *figures["collected_in_period"].values(),
        *figures["at_risk_principal"].values(),
        *figures["par"].values(),
    ]


class PortfolioView(CsvOrJsonMixin, APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminOrApprovedAgent]

    @extend_schema(
        parameters=[PortfolioInput],
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="The portfolio figures."),
            (200, "text/csv"): CSV_REPLY,
        },
    )
    def get(self, request):
        query = validated(PortfolioInput, request.query_params)
        by_agent = query.get("by") == "agent"
        report = reports.portfolio(
            as_of=query["as_of"], period_start=query["from"], agent_id=_agent_of(request), by_agent=by_agent
        )
        if not self.wants_csv(request):
            return ok(report)
        rows = [_portfolio_row(line["agent_id"], report, line) for line in report.get("agents", [])]
        rows.append(_portfolio_row("all", report, report))
        return self.table(PORTFOLIO_COLUMNS, rows, f"portfolio-{report['as_of'].isoformat()}.csv")


class CollectionsView(CsvOrJsonMixin, APIView):
    required_scopes = {"GET": scopes.LOANS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAdminOrApprovedAgent]

    @extend_schema(
        parameters=[CollectionsInput],
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="Collections by month."),
            (200, "text/csv"): CSV_REPLY,
        },
    )
    def get(self, request):
        query = validated(CollectionsInput, request.query_params)
        report = reports.collections(start=query["from"], end=query["to"], agent_id=_agent_of(request))
        if not self.wants_csv(request):
            return ok(report)
        rows = [[row[name] for name in COLLECTION_COLUMNS] for row in report["months"]]
        rows.append(["total", *(report["totals"][name] for name in COLLECTION_COLUMNS[1:])])
        return self.table(COLLECTION_COLUMNS, rows, f"collections-{_month(query['from'])}-{_month(query['to'])}.csv")


def _month(day: date) -> str:
    return day.strftime("%Y-%m")
