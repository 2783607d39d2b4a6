"""Races decided by PostgreSQL: concurrent signups with one email, concurrent agent decisions."""

import pytest
from rest_framework.test import APIClient

from common.outbox.models import OutboxMessage
from common.testing import run_together
from users import services
from users.models import Approval, Role, User

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_signups_with_one_email_exactly_one_wins():
    body = {"password": "correct-Horse-7", "first_name": "A", "last_name": "B", "role": "customer"}

    statuses = run_together(
        12,
        lambda i: APIClient()
        .post("/api/user/signup", {**body, "email": "Race@Example.com" if i % 2 else "race@example.com"}, format="json")
        .status_code,
    )

    assert sorted(statuses) == [201] + [409] * 11
    assert User.objects.filter(email__iexact="race@example.com").count() == 1
    assert OutboxMessage.objects.filter(name="user.registered").count() == 1


def test_concurrent_agent_decisions_exactly_one_wins():
    admin = User.objects.create_superuser("boss@example.com", "correct-Horse-7")
    agent = User.objects.create_user("a@example.com", "correct-Horse-7", role=Role.AGENT, approval=Approval.PENDING)

    def decide(index: int) -> str:
        try:
            services.decide_agent(user_id=agent.id, admin_id=admin.id, approve=index % 2 == 0)
        except Exception as exc:  # the losers' domain error
            return type(exc).__name__
        return "won"

    outcomes = run_together(10, decide)

    assert outcomes.count("won") == 1
    assert outcomes.count("AgentAlreadyDecided") == 9
    assert OutboxMessage.objects.filter(name__in=["agent.approved", "agent.rejected"]).count() == 1
