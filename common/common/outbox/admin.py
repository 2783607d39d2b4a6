from django.contrib import admin

from common.outbox.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("event_id", "name", "created_at", "sent_at", "attempts")
    list_filter = ("name", ("sent_at", admin.EmptyFieldListFilter))
    search_fields = ("event_id", "name")
    readonly_fields = ("event_id", "name", "message", "created_at", "sent_at", "attempts", "last_error")

    def has_add_permission(self, request) -> bool:
        return False
