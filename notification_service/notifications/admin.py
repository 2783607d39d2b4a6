"""The operators' view: notifications with filters and a resend action for failed ones; recipients."""

from django.contrib import admin, messages

from notifications import services, tasks
from notifications.models import Notification, Recipient


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "user_id", "channel", "kind", "subject", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "channel", "kind", "created_at"]
    search_fields = ["=id", "=user_id", "subject", "=event_id"]
    readonly_fields = [field.name for field in Notification._meta.fields]
    actions = ["resend_failed"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Resend selected failed notifications")
    def resend_failed(self, request, queryset):
        ids = services.resend(notification_ids=list(queryset.values_list("pk", flat=True)))
        tasks.queue_deliveries(ids)
        self.message_user(request, f"{len(ids)} notification(s) queued again.", messages.SUCCESS)


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ["user_id", "email", "first_name", "last_name", "role", "updated_at"]
    list_filter = ["role"]
    search_fields = ["=user_id", "email", "first_name", "last_name"]
