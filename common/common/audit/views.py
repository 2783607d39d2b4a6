"""GET /api/<service>/audit: the service's audit trail for admins, newest first, cursor paged."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.views import APIView

from common.api import MAX_ID, ok, validated
from common.audit.models import EVENT_MAX_LENGTH, SUBJECT_ID_MAX_LENGTH, SUBJECT_TYPE_MAX_LENGTH, AuditEvent
from common.pagination import PageOutput, PageParams, paginate
from common.permissions import IsAdmin

BAD_MOMENT = "Give an ISO 8601 date or date-time, e.g. 2026-12-03 or 2026-12-03T10:00:00Z."
EVENT_HELP = 'An event ("login.failed"), or a family when it ends with a dot ("login.").'
SUBJECT_HELP = 'A subject as "<type>:<id>" ("loan:12"), or an id of any type ("12").'


@extend_schema_field(OpenApiTypes.STR)
class MomentField(serializers.Field):
    """An ISO date-time (naive: the server's time zone) or a whole date, kept as (datetime, is_date)."""

    def to_internal_value(self, data):
        text = str(data).strip()
        try:
            day = parse_date(text)  # first: parse_datetime also reads a bare date, as midnight
            moment = None if day else parse_datetime(text)
        except ValueError:  # well-formed but impossible, e.g. 2026-02-30
            moment = day = None
        if (moment or day) and not _representable(moment or datetime.combine(day, time.min)):
            raise serializers.ValidationError(BAD_MOMENT)
        if moment:
            return (moment if timezone.is_aware(moment) else timezone.make_aware(moment)), False
        if day:
            return timezone.make_aware(datetime.combine(day, time.min)), True
        raise serializers.ValidationError(BAD_MOMENT)

    def to_representation(self, value):
        return value


def _representable(moment: datetime) -> bool:
    """Whether the moment, in UTC and a day either side (a date `to` means the day after), is a datetime."""
    try:
        aware = moment if timezone.is_aware(moment) else timezone.make_aware(moment)
        aware.astimezone(UTC) + timedelta(days=1) - timedelta(days=2)
    except (OverflowError, ValueError):
        return False
    return True


class AuditFilters(serializers.Serializer):
    actor = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, help_text="The actor's user id.")
    subject = serializers.CharField(
        max_length=SUBJECT_TYPE_MAX_LENGTH + 1 + SUBJECT_ID_MAX_LENGTH, required=False, help_text=SUBJECT_HELP
    )
    event = serializers.RegexField(
        r"\A[a-z0-9_]+(\.[a-z0-9_]+)*\.?\Z", max_length=EVENT_MAX_LENGTH, required=False, help_text=EVENT_HELP
    )
    outcome = serializers.ChoiceField(choices=AuditEvent.Outcome.choices, required=False)
    since = MomentField(required=False, help_text="From this moment (a date: its start), inclusive.")
    to = MomentField(required=False, help_text="Up to this moment inclusive (a date: that whole day).")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("since")  # `from` is a Python keyword: declared as `since`
        return fields

    def validate_subject(self, value: str) -> tuple[str | None, str]:
        kind, colon, key = value.rpartition(":")
        if not key or (colon and not kind):
            raise serializers.ValidationError(SUBJECT_HELP)
        return (kind if colon else None), key

    def validate(self, attrs: dict) -> dict:
        if "to" in attrs:
            moment, is_date = attrs["to"]
            attrs["to"] = (moment + timedelta(days=1), True) if is_date else (moment, False)
        if "from" in attrs and "to" in attrs:
            start, (end, end_exclusive) = attrs["from"][0], attrs["to"]
            if start > end or (end_exclusive and start == end):
                raise serializers.ValidationError({"from": ["Must not be after `to`."]})
        return attrs


def audit_events(filters: dict) -> QuerySet[AuditEvent]:
    """The rows the validated `filters` select, in the trail's order (newest first)."""
    rows = AuditEvent.objects.all()
    if "actor" in filters:
        rows = rows.filter(actor_id=filters["actor"])
    if "subject" in filters:
        kind, key = filters["subject"]
        rows = rows.filter(subject_id=key, **({"subject_type": kind} if kind is not None else {}))
    if "event" in filters:
        event = filters["event"]
        rows = rows.filter(event__startswith=event) if event.endswith(".") else rows.filter(event=event)
    if "outcome" in filters:
        rows = rows.filter(outcome=filters["outcome"])
    if "from" in filters:
        rows = rows.filter(occurred_at__gte=filters["from"][0])
    if "to" in filters:
        end, exclusive = filters["to"]
        rows = rows.filter(occurred_at__lt=end) if exclusive else rows.filter(occurred_at__lte=end)
    return rows


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "event",
            "outcome",
            "reason",
            "actor_id",
            "subject_type",
            "subject_id",
            "ip",
            "user_agent",
            "correlation_id",
            "details",
        ]


class AuditPageOutput(PageOutput):
    results = AuditEventOutput(many=True)


class AuditListView(APIView):
    """The audit trail, admins only: filter by actor, subject, event (or family), outcome and time."""

    permission_classes = [IsAdmin]

    @extend_schema(parameters=[AuditFilters, PageParams], responses=AuditPageOutput)
    def get(self, request):
        filters = validated(AuditFilters, request.query_params)
        rows = audit_events(filters)
        return ok(paginate(rows, request.query_params, lambda page: AuditEventOutput(page, many=True).data))
