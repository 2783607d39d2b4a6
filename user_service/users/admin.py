"""The operators' view of users: filters by role and approval, approve/reject through the services."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from common.errors import DomainError
from users import services
from users.models import Approval, Role, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["-created_at"]
    list_display = ["id", "email", "first_name", "last_name", "role", "approval", "is_active", "created_at"]
    list_filter = ["role", "approval", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["role", "approval", "created_at", "updated_at", "deleted_at", "last_login"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["first_name", "last_name"]}),
        ("Role", {"fields": ["role", "approval", "is_active", "is_staff", "is_superuser"]}),
        ("Dates", {"fields": ["created_at", "updated_at", "deleted_at", "last_login"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    actions = ["approve_agents", "reject_agents"]

    def has_add_permission(self, request) -> bool:
        # New users come through signup or `createadmin`, which publish their events.
        return False

    @admin.action(description="Approve selected agents")
    def approve_agents(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected agents")
    def reject_agents(self, request, queryset):
        self._decide(request, queryset, approve=False)

    def _decide(self, request, queryset, *, approve: bool) -> None:
        done, skipped = 0, 0
        for user_id in queryset.filter(role=Role.AGENT, approval=Approval.PENDING).values_list("id", flat=True):
            try:
                services.decide_agent(user_id=user_id, admin_id=request.user.id, approve=approve)
                done += 1
            except DomainError:
                skipped += 1
        skipped += queryset.count() - done - skipped
        verb = "approved" if approve else "rejected"
        self.message_user(request, f"{done} agent(s) {verb}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} skipped: not an agent waiting for approval.", messages.WARNING)
