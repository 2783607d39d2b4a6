"""The operators' view of users: filters by role and approval; every change of state goes through users.services.

Role, approval and the account flags are read-only here: editing them in the form
would skip what the services do with them (deleted_at, token revocation, events).
"""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Exists, OuterRef

from common import scopes as api_scopes
from common.errors import DomainError
from users import api_keys, factors, services
from users.models import ApiKey, TotpDevice, User

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


class ApiKeyForm(forms.ModelForm):
    """A new key: what it is for, who it acts as, what it may do. Nothing of a key changes afterwards."""

    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in api_scopes.ALL], widget=forms.CheckboxSelectMultiple
    )
    rate_limit = forms.IntegerField(min_value=1, max_value=100_000, required=False, help_text="Requests a minute.")

    class Meta:
        model = ApiKey
        fields = ["name", "owner", "scopes", "rate_limit", "expires_at"]

    def clean_owner(self):
        owner = self.cleaned_data["owner"]
        if (refusal := api_keys.owner_refusal(owner)) is not None:
            raise forms.ValidationError(refusal)
        return owner


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """API keys: made here or by the API; the secret is shown once, in the message after saving."""

    form = ApiKeyForm
    list_display = ["name", "prefix", "owner", "scope_list", "rate_limit", "expires_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "prefix", "owner__email"]
    raw_id_fields = ["owner"]
    actions = ["revoke_keys", "rotate_keys"]
    readonly = [
        "name", "owner", "prefix", "scopes", "rate_limit", "expires_at", "created_at", "created_by",
        "last_used_at", "revoked_at", "revoked_by", "replaced_by",
    ]  # fmt: skip

    @admin.display(description="scopes")
    def scope_list(self, api_key: ApiKey) -> str:
        return ", ".join(api_key.scopes)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly if obj is not None else []

    def get_fields(self, request, obj=None):
        return self.readonly if obj is not None else ApiKeyForm.Meta.fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the row stays for the audit trail

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        data = form.cleaned_data
        made = api_keys.create(
            name=data["name"], owner_id=data["owner"].id, scopes=list(data["scopes"]), admin_id=request.user.id,
            expires_at=data.get("expires_at"), rate_limit=data.get("rate_limit"), request=request,
        )  # fmt: skip
        obj.pk, obj.prefix = made.api_key.pk, made.api_key.prefix
        self.message_user(request, f"The key, shown only now: {made.key}", messages.WARNING)

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request, queryset):
        for api_key_id in queryset.values_list("id", flat=True):
            api_keys.revoke(api_key_id=api_key_id, admin_id=request.user.id, request=request)
        self.message_user(request, f"{queryset.count()} key(s) revoked.", messages.SUCCESS)

    @admin.action(description="Rotate the selected keys (new secrets, the old ones revoked)")
    def rotate_keys(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            made = api_keys.rotate(api_key_id=api_key.id, admin_id=request.user.id, request=request)
            self.message_user(request, f"{api_key.name}, shown only now: {made.key}", messages.WARNING)
