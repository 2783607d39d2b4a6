from django.contrib import admin

from common.idempotency.models import IdempotencyKey


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    """Read only: records are written by the middleware alone, and expire by themselves."""

    list_display = ("key", "scope", "status", "response_status", "created_at")
    list_filter = ("status",)
    search_fields = ("key", "scope")
    fields = ("scope", "key", "status", "response_status", "response_content_type", "created_at", "locked_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
