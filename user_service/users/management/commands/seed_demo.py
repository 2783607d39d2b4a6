"""`manage.py seed_demo`: a few customers, agents and an admin for trying the system.

Safe to run again: a demo email that already exists is kept exactly as it is
(role, approval, password) and reported. The demo agent is approved only while
it waits, and only by the demo admin when that email really is an active admin.
"""

from django.core.management.base import BaseCommand

from common.errors import DomainError
from users import selectors, services
from users.errors import EmailTaken
from users.models import Approval, Role, User

DEMO_PASSWORD = "demo-Pass-2026"  # noqa: S105 - documented demo credential for local trials only
DEMO_ADMIN = "admin@example.com"
DEMO_APPROVED_AGENT = "agent@example.com"

DEMO_USERS = [
    (DEMO_ADMIN, "Ada", "Admin", Role.ADMIN),
    (DEMO_APPROVED_AGENT, "Alan", "Agent", Role.AGENT),
    ("pending.agent@example.com", "Penny", "Pending", Role.AGENT),
    ("ann@example.com", "Ann", "Lee", Role.CUSTOMER),
    ("bob@example.com", "Bob", "Kim", Role.CUSTOMER),
    ("cy@example.com", "Cy", "Park", Role.CUSTOMER),
]


class Command(BaseCommand):
    help = f"Create demo users (password {DEMO_PASSWORD}); existing ones are kept as they are."

    def handle(self, *args, **options):
        users = {email: self._ensure(email, first, last, role) for email, first, last, role in DEMO_USERS}
        self._approve_demo_agent(users[DEMO_APPROVED_AGENT], admin=users[DEMO_ADMIN])
        self.stdout.write(self.style.SUCCESS(f"password of the users created now: {DEMO_PASSWORD}"))

    def _ensure(self, email: str, first_name: str, last_name: str, role: str) -> User:
        existing = selectors.find_user_by_email(email)
        if existing is None:
            try:
                user = _create(email=email, first_name=first_name, last_name=last_name, role=role)
                self.stdout.write(f"{role:9} {email} (id {user.id}) created")
                return user
            except EmailTaken:  # created meanwhile by someone else
                existing = selectors.find_user_by_email(email)
        state = "" if existing.is_active else ", deactivated"
        if existing.role != role:
            self.stdout.write(
                self.style.WARNING(f"{existing.role:9} {email} (id {existing.id}) kept: not the demo {role}{state}")
            )
        else:
            self.stdout.write(f"{role:9} {email} (id {existing.id}) exists{state}")
        return existing

    def _approve_demo_agent(self, agent: User, *, admin: User) -> None:
        if agent.role != Role.AGENT or agent.approval == Approval.APPROVED or not agent.is_active:
            return
        if agent.approval == Approval.REJECTED:
            self.stdout.write(self.style.WARNING(f"{agent.email} was rejected by an admin; it stays rejected"))
            return
        if admin.role != Role.ADMIN or not admin.is_active:
            self.stdout.write(self.style.WARNING(f"{agent.email} left waiting: {admin.email} is not an active admin"))
            return
        try:
            services.decide_agent(user_id=agent.id, admin_id=admin.id, approve=True)
        except DomainError as exc:  # decided meanwhile by someone else
            self.stdout.write(self.style.WARNING(f"{agent.email} not approved: {exc.message}"))
            return
        self.stdout.write(f"{agent.email} approved by {admin.email}")


def _create(*, email: str, first_name: str, last_name: str, role: str) -> User:
    names = {"email": email, "password": DEMO_PASSWORD, "first_name": first_name, "last_name": last_name}
    if role == Role.ADMIN:
        return services.create_admin(**names)
    return services.register_user(**names, role=role)
