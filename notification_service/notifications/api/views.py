"""The /api/notifications/ endpoints of API.md: parse, call one service or selector, shape the reply."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from common.api import accepted, ok, paginate
from common.correlation import get_correlation_id
from common.permissions import IsAdmin
from notifications import selectors, services, tasks
from notifications.models import Notification

BATCH_CHUNK = 100  # one fan-out task per this many notifications of a batch


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


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class InboxView(APIView):
    permission_classes = [IsAuthenticated]

    class FilterSerializer(serializers.Serializer):
        unread = serializers.BooleanField(required=False, allow_null=True, default=None)
        kind = serializers.CharField(required=False, max_length=40, default="")

    def get(self, request):
        filters = _valid(self.FilterSerializer, request.query_params)
        notifications = selectors.inbox(user_id=request.user.id, **filters)
        return ok(paginate(notifications, request.query_params, lambda rows: NotificationOutput(rows, many=True).data))


class NotificationDetailView(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request, notification_id: int):
        return ok(NotificationOutput(selectors.get_notification_for(request.user, notification_id)).data)


class MarkReadView(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request, notification_id: int):
        notification = services.mark_read(notification_id=notification_id, user_id=request.user.id)
        return ok(NotificationOutput(notification).data)


class MessageInput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Notification.Channel.values)
    subject = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=10_000)


def _queue(notifications: list[Notification]) -> None:
    pending = [n.pk for n in notifications if n.status == Notification.Status.PENDING]
    for start in range(0, len(pending), BATCH_CHUNK):
        tasks.deliver_many.apply_async((pending[start : start + BATCH_CHUNK],), queue="notifications")


class SendView(APIView):
    permission_classes = [IsAdmin]

    class InputSerializer(MessageInput):
        user_id = serializers.IntegerField(min_value=1)

    def post(self, request):
        data = _valid(self.InputSerializer, request.data)
        user_id = data.pop("user_id")
        [notification] = services.queue_message(user_ids=[user_id], correlation_id=get_correlation_id(), **data)
        _queue([notification])
        return accepted(NotificationOutput(notification).data)


class SendBatchView(APIView):
    permission_classes = [IsAdmin]

    class InputSerializer(MessageInput):
        user_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1), min_length=1, max_length=settings.MAX_BATCH_RECIPIENTS
        )

    def post(self, request):
        data = _valid(self.InputSerializer, request.data)
        user_ids = list(dict.fromkeys(data.pop("user_ids")))  # each user once, in the given order
        notifications = services.queue_message(user_ids=user_ids, correlation_id=get_correlation_id(), **data)
        _queue(notifications)
        return accepted({"queued": len(notifications)})
