"""/metrics carries the active users by role and approval and the outbox backlog."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common import business_metrics
from common.outbox.models import OutboxMessage
from tests.factories import UserFactory
from users.models import Approval, Role

pytestmark = pytest.mark.django_db


def scrape(api) -> dict[tuple[str, tuple], float]:
    business_metrics.expire()
    reply = api.get("/metrics")
    assert reply.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.content.decode())
        for sample in family.samples
    }


def test_active_users_by_role_and_approval(api):
    UserFactory(role=Role.CUSTOMER)
    UserFactory(role=Role.CUSTOMER)
    UserFactory(role=Role.AGENT, approval=Approval.PENDING)
    UserFactory(role=Role.CUSTOMER, is_active=False)  # deleted: not counted

    figures = scrape(api)

    assert figures[("lms_users", (("approval", "approved"), ("role", "customer")))] == 2
    assert figures[("lms_users", (("approval", "pending"), ("role", "agent")))] == 1
    assert figures[("lms_outbox_unsent", ())] == OutboxMessage.objects.filter(sent_at__isnull=True).count()
