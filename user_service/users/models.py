"""Users: email sign-in, a role, and an approval state for agents."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower


class Role(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    AGENT = "agent", "Agent"
    ADMIN = "admin", "Admin"


class Approval(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class UserManager(BaseUserManager):
    """Creates rows and finds one by email; the rules (validation, events) live in users.services."""

    use_in_migrations = True

    def with_email(self, email: str) -> User | None:
        """The user with this email (case-insensitive, like the unique constraint), active or not; None if none.

        The one lookup by email: sign-in (users.services) and users.selectors both use it.
        """
        return self.filter(email__iexact=email.strip()).first()

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(role=Role.ADMIN, approval=Approval.APPROVED, is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in: customer, agent or admin."""

    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, db_index=True)
    approval = models.CharField(max_length=16, choices=Approval.choices, default=Approval.APPROVED, db_index=True)
    is_active = models.BooleanField(default=True, help_text="False once deleted: the row stays for the audit trail.")
    is_staff = models.BooleanField(default=False, help_text="May sign in to this service's admin site.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["first_name", "last_name"]

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Case-insensitive uniqueness enforced by the database, so concurrent signups cannot both win.
            models.UniqueConstraint(Lower("email"), name="users_user_email_ci_unique"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="users_user_role_valid"),
            models.CheckConstraint(condition=models.Q(approval__in=Approval.values), name="users_user_approval_valid"),
            models.CheckConstraint(
                condition=models.Q(role="agent") | models.Q(approval="approved"),
                name="users_user_only_agents_await_approval",
            ),
        ]
        # The lists' orderings, each ending with the id so that a cursor page is one index range.
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="users_newest"),  # list-users
            models.Index(fields=["role", "-created_at", "-id"], name="users_role_newest"),  # list-agents, ?role=
            # list-approvals, oldest first (the index read backwards)
            models.Index(fields=["role", "approval", "-created_at", "-id"], name="users_role_approval_newest"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_approved(self) -> bool:
        return self.approval == Approval.APPROVED

    @property
    def is_rejected(self) -> bool:
        """An agent an admin has rejected (common's permissions answer `agent_rejected` for them)."""
        return self.approval == Approval.REJECTED


class TotpDevice(models.Model):
    """A user's TOTP authenticator (RFC 6238): pending until a first code confirms it.

    The shared secret is stored encrypted (users.mfa.seal) so a copy of the table alone gives no codes.
    `last_step` is the last time step a code was accepted for: a code is never accepted twice.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="totp_device")
    sealed_secret = models.TextField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_step = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"TOTP of {self.user_id} ({'confirmed' if self.confirmed_at else 'pending'})"

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class RecoveryCode(models.Model):
    """One of a user's ten single-use recovery codes, kept only as a keyed hash (users.mfa.code_digest)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "digest"], name="users_recovery_code_unique")]

    def __str__(self) -> str:
        return f"recovery code of {self.user_id}"


class ChallengeKind(models.TextChoices):
    VERIFY = "verify", "Second factor"
    ENROL = "enrol", "Enrol a second factor"


class LoginChallenge(models.Model):
    """The half-done sign-in between the password and the second factor: short-lived and single-use.

    The client holds a random token; only its SHA-256 is stored, so the table cannot be replayed.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_challenges")
    digest = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=8, choices=ChallengeKind.choices)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.kind} challenge of {self.user_id}"


class UserSession(models.Model):
    """One signed-in device: a refresh-token family, from the sign-in to its end.

    Every refresh token of the family carries the session's id (`sid`); `current_jti` is the
    one token of it that may still be refreshed. Ended sessions stay, with why they ended.
    """

    class EndReason(models.TextChoices):
        LOGOUT = "logout", "Signed out"
        SIGNED_OUT_BY_USER = "signed_out_by_user", "Signed out from another device"
        REFRESH_REUSE = "refresh_reuse", "A rotated refresh token was used again"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        ACCOUNT_CHANGED = "account_changed", "Role, approval or activation changed"
        MFA_CHANGED = "mfa_changed", "Second factor changed"

    id = models.UUIDField(primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    current_jti = models.CharField(max_length=255, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)

    class Meta:
        ordering = ["-last_used_at", "-id"]
        indexes = [models.Index(fields=["user", "-last_used_at", "-id"], name="users_session_user_recent")]

    def __str__(self) -> str:
        return f"session {self.id} of {self.user_id}"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class ApiKey(models.Model):
    """A client application's credential (docs/API.md, "API keys"): scopes, expiry, its own rate limit.

    The key is `lms_<prefix>_<secret>`, shown once when it is made. Only the prefix (to find the row)
    and a keyed hash of the secret are stored (users.api_keys). A revoked key stays, with who and when.
    """

    name = models.CharField(max_length=100, help_text="What the key is for, e.g. the partner's system.")
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_keys", help_text="Who it acts as.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    rate_limit = models.PositiveIntegerField(help_text="Requests a minute through the gateway.")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Last exchanged for a token.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self", on_delete=models.PROTECT, related_name="replaces", null=True, blank=True, editable=False
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="users_api_key_newest")]
        constraints = [models.CheckConstraint(condition=models.Q(rate_limit__gt=0), name="users_api_key_rate_positive")]

    def __str__(self) -> str:
        return f"{self.name} (lms_{self.prefix}_…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
