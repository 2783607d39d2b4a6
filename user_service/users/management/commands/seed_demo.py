"""`manage.py seed_demo`: a few customers, agents and an admin for trying the system."""

from django.core.management.base import BaseCommand

from users import services
from users.errors import EmailTaken
from users.models import User

DEMO_PASSWORD = "demo-Pass-2026"  # noqa: S105 - documented demo credential for local trials only

DEMO_USERS = [
    ("admin@example.com", "Ada", "Admin", "admin"),
    ("agent@example.com", "Alan", "Agent", "agent"),
    ("pending.agent@example.com", "Penny", "Pending", "agent"),
    ("ann@example.com", "Ann", "Lee", "customer"),
    ("bob@example.com", "Bob", "Kim", "customer"),
    ("cy@example.com", "Cy", "Park", "customer"),
]


class Command(BaseCommand):
    help = f"Create demo users (password {DEMO_PASSWORD}); existing ones are kept."

    def handle(self, *args, **options):
        admin = None
        for email, first_name, last_name, role in DEMO_USERS:
            try:
                if role == "admin":
                    user = services.create_admin(
                        email=email, password=DEMO_PASSWORD, first_name=first_name, last_name=last_name
                    )
                else:
                    user = services.register_user(
                        email=email, password=DEMO_PASSWORD, first_name=first_name, last_name=last_name, role=role
                    )
            except EmailTaken:
                user = User.objects.get(email=email)
            if role == "admin":
                admin = user
            elif email == "agent@example.com" and not user.is_approved:
                services.decide_agent(user_id=user.id, admin_id=admin.id, approve=True)
            self.stdout.write(f"{role:9} {email} (id {user.id})")
        self.stdout.write(self.style.SUCCESS(f"password for all: {DEMO_PASSWORD}"))
