"""`manage.py createadmin --email E --password P`: a non-interactive admin (works while the system runs)."""

from django.core.management.base import BaseCommand, CommandError

from common.errors import DomainError
from users import services
from users.errors import EmailTaken


class Command(BaseCommand):
    help = "Create an admin user without prompts."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--exist-ok", action="store_true", help="Succeed if the email is already taken.")

    def handle(self, *args, email, password, first_name, last_name, exist_ok, **options):
        try:
            user = services.create_admin(email=email, password=password, first_name=first_name, last_name=last_name)
        except EmailTaken as exc:
            if exist_ok:
                self.stdout.write(f"admin {email} already exists")
                return
            raise CommandError(exc.message) from exc
        except DomainError as exc:
            raise CommandError(f"{exc.message} {exc.details}") from exc
        self.stdout.write(self.style.SUCCESS(f"admin {user.email} created (id {user.id})"))
