from django.apps import apps
from django.contrib import admin

from common.audit.models import AuditEvent


class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: an admin may look, never add, change or delete (no delete action either)."""

    list_display = ("occurred_at", "event", "outcome", "reason", "actor_id", "subject_type", "subject_id", "ip")
    list_filter = ("outcome", "subject_type", "event")
    search_fields = ("=event", "=subject_id", "=correlation_id")
    show_full_result_count = False  # the table only grows: no COUNT(*) of it on every page
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


# Registered where the admin is installed (every service); common's own tests use the class alone.
if apps.is_installed("django.contrib.admin"):
    admin.site.register(AuditEvent, AuditEventAdmin)
