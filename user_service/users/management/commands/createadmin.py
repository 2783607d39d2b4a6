"""`manage.py createadmin --email E --password P`: a non-interactive admin (works while the system runs)."""

from django.core.management.base import BaseCommand, CommandError

from common.errors import DomainError
from users import selectors, services
from users.errors import EmailTaken
from users.models import Role


class Command(BaseCommand):
    help = "Create an admin user without prompts."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--exist-ok", action="store_true", help="Succeed if this email is already an admin.")

    def handle(self, *args, email, password, first_name, last_name, exist_ok, **options):
        try:
            user = services.create_admin(email=email, password=password, first_name=first_name, last_name=last_name)
        except EmailTaken as exc:
            if not exist_ok:
                raise CommandError(exc.message) from exc
            self._accept_existing(email)
            return
        except DomainError as exc:
            raise CommandError(_explained(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"admin {user.email} created (id {user.id})"))

    def _accept_existing(self, email: str) -> None:
        existing = selectors.find_user_by_email(email)
        if existing is not None and existing.role == Role.ADMIN and existing.is_active:
            self.stdout.write(f"admin {existing.email} already exists (id {existing.id})")
            return
        found = f"a {existing.role}{'' if existing.is_active else ', deactivated'}" if existing else "a user"
        raise CommandError(f"{email} already exists as {found}, not an active admin; nothing changed.")


def _explained(error: DomainError) -> str:
    """`The request is invalid. password: This password is too common.`"""
    reasons = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.details.items())
    return f"{error.message} {reasons}".strip()
