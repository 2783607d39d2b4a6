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
