"""/metrics carries the loans, decisions, disbursements, repayments and outbox backlog, read from the database."""

from decimal import Decimal

import pytest

from common.outbox.models import OutboxMessage
from common.schema_testing import metric_samples
from loans import services
from tests.conftest import ADMIN_ID, AGENT_ID, CUSTOMER_ID, repay

pytestmark = pytest.mark.django_db


def scrape(api) -> dict[tuple[str, tuple], float]:
    return metric_samples(api)


def loan(status=None):
    created = services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("50000"), months=12)
    if status:
        services.decide_loan(loan_id=created.id, admin_id=ADMIN_ID, status=status)
    return created


def test_loans_by_status_and_the_totals_of_decisions(api):
    before = scrape(api)
    loan()
    loan("APPROVED")
    loan("APPROVED")
    loan("REJECTED")

    after = scrape(api)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0)

    assert grew("lms_loans", status="NEW") == 1
    assert grew("lms_loans", status="APPROVED") == 2
    assert grew("lms_loans_created_total") == 4
    assert grew("lms_loans_decided_total", decision="approved") == 2
    assert grew("lms_loans_decided_total", decision="rejected") == 1
    assert grew("lms_loans_disbursed_total") == 0


def test_disbursements_and_repayments_count_and_sum(api, make_disbursed, agent_api):
    before = scrape(api)
    first = make_disbursed()
    make_disbursed()
    assert repay(agent_api, first.id, "100.25").status_code == 201
    assert repay(agent_api, first.id, "50.00").status_code == 201

    after = scrape(api)

    assert after[("lms_loans_disbursed_total", ())] - before.get(("lms_loans_disbursed_total", ()), 0) == 2
    assert after[("lms_repayments_total", ())] - before.get(("lms_repayments_total", ()), 0) == 2
    assert after[("lms_repaid_amount_total", ())] - before.get(("lms_repaid_amount_total", ()), 0) == 150.25
    assert after[("lms_loans", (("status", "APPROVED"),))] == before.get(("lms_loans", (("status", "APPROVED"),)), 0)


def test_the_outbox_backlog_and_its_oldest_row(api):
    OutboxMessage.objects.all().delete()
    assert scrape(api)[("lms_outbox_unsent", ())] == 0
    assert scrape(api)[("lms_outbox_oldest_unsent_age_seconds", ())] == 0

    loan("APPROVED")  # two events: created, decided
    OutboxMessage.objects.update(created_at=OutboxMessage.objects.first().created_at.replace(year=2020))
    figures = scrape(api)

    assert figures[("lms_outbox_unsent", ())] == OutboxMessage.objects.filter(sent_at__isnull=True).count() >= 2
    assert figures[("lms_outbox_oldest_unsent_age_seconds", ())] > 86400 * 365


def test_figures_are_read_at_most_once_per_cache_period(api, django_assert_max_num_queries):
    scrape(api)
    loan()
    with django_assert_max_num_queries(0):
        cached = api.get("/metrics").content.decode()  # within the cache period: no query at all
    assert "lms_loans_created_total" in cached
