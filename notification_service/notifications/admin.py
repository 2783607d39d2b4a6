"""The operators' view: notifications with a resend action for failed ones; recipients; dead letters with a replay."""

from django.contrib import admin, messages

from notifications import services, tasks
from notifications.models import DeadLetter, Notification, Recipient


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
    list_display = ["user_id", "email", "first_name", "last_name", "role", "is_active", "updated_at"]
    list_filter = ["role", "is_active"]
    search_fields = ["=user_id", "email", "first_name", "last_name"]


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    """Events the consumer could not use: read-only, never deleted; "Replay" consumes them again."""

    list_display = [
        "id",
        "event_name",
        "event_id",
        "reason",
        "status",
        "failures",
        "first_failed_at",
        "last_failed_at",
        "replayed_at",
        "replayed_by",
    ]
    list_filter = ["status", "reason", "event_name"]
    search_fields = ["=id", "=event_id", "=correlation_id", "event_name"]
    readonly_fields = [field.name for field in DeadLetter._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a replayed letter is the record that the event was handled late

    @admin.action(description="Replay selected dead letters")
    def replay(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        outcomes = services.replay_dead_letters(letter_ids=ids, by=request.user.get_username())
        tasks.queue_replayed(outcomes)
        replayed = [o for o in outcomes if o.outcome == "replayed"]
        self.message_user(request, f"{len(replayed)} dead letter(s) replayed.", messages.SUCCESS)
        for outcome in outcomes:
            if outcome.outcome in ("rejected", "failed"):
                self.message_user(
                    request, f"Dead letter {outcome.letter_id} not replayed: {outcome.detail}", messages.ERROR
                )
            elif outcome.outcome == "skipped":
                self.message_user(request, f"Dead letter {outcome.letter_id}: {outcome.detail}.", messages.WARNING)
