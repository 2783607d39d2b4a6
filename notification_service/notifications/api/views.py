"""The /api/notifications/ endpoints of API.md: parse, call one service or selector, shape the reply."""

from __future__ import annotations

import unicodedata

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from common import scopes
from common.api import MAX_ID, POSITIVE_INT_MAX, accepted, ok, validated
from common.correlation import get_correlation_id
from common.pagination import PageOutput, PageParams, paginate
from common.permissions import IsAdmin
from notifications import selectors, services, tasks
from notifications.models import Notification

LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})  # control characters and line/paragraph separators


class NotificationOutput(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = [
            "id",
            "user_id",
            "channel",
            "kind",
            "subject",
            "body",
            "status",
            "attempts",
            "created_at",
            "sent_at",
            "read_at",
        ]
        # A reply: every field is always there (a model default would make it optional in the document).
        extra_kwargs = {name: {"required": True} for name in fields if name not in ("id", "created_at")}
        extra_kwargs["attempts"]["max_value"] = POSITIVE_INT_MAX  # stated: the document is the database's otherwise


class NotificationPageOutput(PageOutput):
    results = NotificationOutput(many=True)


class InboxView(APIView):
    required_scopes = {"GET": scopes.NOTIFICATIONS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAuthenticated]

    class FilterSerializer(serializers.Serializer):
        unread = serializers.BooleanField(required=False, allow_null=True, default=None)
        kind = serializers.CharField(required=False, max_length=40, default="")

    @extend_schema(parameters=[FilterSerializer, PageParams], responses={200: NotificationPageOutput})
    def get(self, request):
        filters = validated(self.FilterSerializer, request.query_params)
        notifications = selectors.inbox(user_id=request.user.id, **filters)
        return ok(paginate(notifications, request.query_params, lambda rows: NotificationOutput(rows, many=True).data))


class NotificationDetailView(APIView):
    required_scopes = {"GET": scopes.NOTIFICATIONS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: NotificationOutput})
    def get(self, request, notification_id: int):
        return ok(NotificationOutput(selectors.get_notification_for(request.user, notification_id)).data)


class MarkReadView(APIView):
    required_scopes = {"POST": scopes.NOTIFICATIONS_READ}  # what an API key needs (common.scopes)
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: NotificationOutput})
    def post(self, request, notification_id: int):
        notification = services.mark_read(notification_id=notification_id, user_id=request.user.id)
        return ok(NotificationOutput(notification).data)


def _reject_line_breaks(value: str) -> str:
    # A subject becomes a mail header: a newline in it would break the header (or inject another one).
    if any(unicodedata.category(character) in LINE_BREAKING for character in value):
        raise serializers.ValidationError("The subject must be a single line without control characters.")
    return value


class MessageInput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Notification.Channel.choices)  # the model's: one enum in the document
    subject = serializers.CharField(max_length=200, validators=[_reject_line_breaks])
    body = serializers.CharField(max_length=10_000)


def _user_id() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID)


class SendView(APIView):
    required_scopes = {"POST": scopes.NOTIFICATIONS_SEND}  # what an API key needs (common.scopes)
    permission_classes = [IsAdmin]

    @extend_schema_serializer(component_name="SendInput")
    class InputSerializer(MessageInput):
        user_id = _user_id()

    @extend_schema(request=InputSerializer, responses={202: NotificationOutput})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        user_id = data.pop("user_id")
        [notification] = services.queue_message(user_ids=[user_id], correlation_id=get_correlation_id(), **data)
        tasks.queue_batch([notification])
        return accepted(NotificationOutput(notification).data)


class SendBatchView(APIView):
    required_scopes = {"POST": scopes.NOTIFICATIONS_SEND}  # what an API key needs (common.scopes)
    permission_classes = [IsAdmin]

    @extend_schema_serializer(component_name="SendBatchInput")
    class InputSerializer(MessageInput):
        user_ids = serializers.ListField(child=_user_id(), min_length=1, max_length=settings.MAX_BATCH_RECIPIENTS)

    @extend_schema_serializer(component_name="BatchQueuedOutput")
    class OutputSerializer(serializers.Serializer):
        queued = serializers.IntegerField(min_value=1, help_text="Notifications queued: one per distinct user id.")

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        user_ids = list(dict.fromkeys(data.pop("user_ids")))  # each user once, in the given order
        notifications = services.queue_message(user_ids=user_ids, correlation_id=get_correlation_id(), **data)
        tasks.queue_batch(notifications)
        return accepted({"queued": len(notifications)})
