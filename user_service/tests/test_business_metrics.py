"""/metrics carries the active users by role and approval and the outbox backlog."""

import pytest

from common.outbox.models import OutboxMessage
from common.schema_testing import metric_samples
from tests.factories import UserFactory
from users.models import Approval, Role

pytestmark = pytest.mark.django_db


def scrape(api) -> dict[tuple[str, tuple], float]:
    return metric_samples(api)


def test_active_users_by_role_and_approval(api):
    UserFactory(role=Role.CUSTOMER)
    UserFactory(role=Role.CUSTOMER)
    UserFactory(role=Role.AGENT, approval=Approval.PENDING)
    UserFactory(role=Role.CUSTOMER, is_active=False)  # deleted: not counted

    figures = scrape(api)

    assert figures[("lms_users", (("approval", "approved"), ("role", "customer")))] == 2
    assert figures[("lms_users", (("approval", "pending"), ("role", "agent")))] == 1
    assert figures[("lms_outbox_unsent", ())] == OutboxMessage.objects.filter(sent_at__isnull=True).count()
