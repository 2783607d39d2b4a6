"""The operators' view of users: filters by role and approval; every change of state goes through users.services.

Role, approval and the account flags are read-only here: editing them in the form
would skip what the services do with them (deleted_at, token revocation, events).
"""

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Exists, OuterRef

from common.errors import DomainError
from users import factors, services
from users.models import TotpDevice, User

STATE_FIELDS = ["role", "approval", "is_active", "is_staff", "is_superuser"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["-created_at"]
    list_display = [
        "id", "email", "first_name", "last_name", "role", "approval", "is_active", "second_factor", "created_at",
    ]  # fmt: skip
    list_filter = ["role", "approval", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = [*STATE_FIELDS, "created_at", "updated_at", "deleted_at", "last_login"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["first_name", "last_name"]}),
        ("Role and state (change them with the actions)", {"fields": STATE_FIELDS}),
        ("Dates", {"fields": ["created_at", "updated_at", "deleted_at", "last_login"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    actions = ["approve_agents", "reject_agents", "deactivate_users", "reset_second_factors", "end_sessions"]

    def get_queryset(self, request):
        confirmed = TotpDevice.objects.filter(user=OuterRef("pk"), confirmed_at__isnull=False)
        return super().get_queryset(request).annotate(has_second_factor=Exists(confirmed))

    @admin.display(boolean=True, description="2FA", ordering="has_second_factor")
    def second_factor(self, user) -> bool:
        return user.has_second_factor

    def has_add_permission(self, request) -> bool:
        # New users come through signup or `createadmin`, which publish their events.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Rows stay for the audit trail and other services' references: deactivate instead.
        return False

    def user_change_password(self, request, id, form_url=""):
        """Django's set-password page; a new password also ends the user's sessions, as change-password does."""
        response = super().user_change_password(request, id, form_url)
        changed = request.method == "POST" and response.status_code == 302 and response.url != request.get_full_path()
        if changed:
            services.password_set_by_admin(user=self.get_object(request, id), admin_id=request.user.id, request=request)
        return response

    @admin.action(description="Approve selected agents")
    def approve_agents(self, request, queryset):
        self._apply(request, queryset, "approved", self._decision(request, approve=True))

    @admin.action(description="Reject selected agents")
    def reject_agents(self, request, queryset):
        self._apply(request, queryset, "rejected", self._decision(request, approve=False))

    @admin.action(description="Deactivate selected users")
    def deactivate_users(self, request, queryset):
        self._apply(
            request,
            queryset,
            "deactivated",
            lambda user_id: services.deactivate_user(user_id=user_id, admin_id=request.user.id, request=request),
        )

    @admin.action(description="Reset the second factor of selected users (they set one up at their next sign-in)")
    def reset_second_factors(self, request, queryset):
        self._apply(
            request,
            queryset,
            "reset",
            lambda user_id: factors.reset(user_id=user_id, admin=request.user, request=request),
        )

    @admin.action(description="Sign out selected users everywhere (end all their sessions)")
    def end_sessions(self, request, queryset):
        self._apply(
            request,
            queryset,
            "signed out",
            lambda user_id: services.end_sessions_by_admin(user_id=user_id, admin_id=request.user.id, request=request),
        )

    @staticmethod
    def _decision(request, *, approve: bool) -> Callable[[int], object]:
        return lambda user_id: services.decide_agent(
            user_id=user_id, admin_id=request.user.id, approve=approve, request=request
        )

    def _apply(self, request, queryset, verb: str, use_case: Callable[[int], object]) -> None:
        """Run the use case on each selected user; the ones it refuses are counted with its reason."""
        done, refused = 0, {}
        for user_id in queryset.values_list("id", flat=True):
            try:
                use_case(user_id)
                done += 1
            except DomainError as exc:
                refused[exc.message] = refused.get(exc.message, 0) + 1
        self.message_user(request, f"{done} user(s) {verb}.", messages.SUCCESS)
        for reason, count in refused.items():
            self.message_user(request, f"{count} skipped: {reason}", messages.WARNING)
