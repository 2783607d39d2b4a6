"""The portfolio dashboard in the admin: linked from the index, today's figures, the charts, the call list."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from loans import reports, services
from loans.daily import run_daily
from loans.models import PortfolioDay
from tests.conftest import AGENT_ID, CUSTOMER_ID, disbursed, months_ago
from tests.test_admin_servicing import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(user_service_server, client):
    return sign_in(client, user_service_server)


def figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}">([^<]*)<', html)
    assert match, name
    return match.group(1)


def test_the_admin_index_links_the_dashboard(signed_in):
    html = signed_in.get("/admin/").content.decode()

    assert '<a href="/admin/dashboard/" class="button">Portfolio dashboard</a>' in html


def test_the_dashboard_shows_todays_report_the_charts_and_the_late_loans(signed_in):
    late = disbursed(principal="12000.00", months=12, on=months_ago(5))  # nothing paid: about 4 months late
    disbursed(principal="30000.00", months=6, on=timezone.localdate() - timedelta(days=3))
    services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("10000"), months=6)
    run_daily(as_of=timezone.localdate() - timedelta(days=1))  # yesterday's snapshot and the arrears
    run_daily(as_of=timezone.localdate())

    response = signed_in.get("/admin/dashboard/")

    assert response.status_code == 200
    html = response.content.decode()
    today = reports.portfolio(as_of=timezone.localdate(), period_start=timezone.localdate().replace(day=1))
    assert figure(html, "loans_disbursed") == "2"
    assert figure(html, "loans_new") == "1"
    assert figure(html, "outstanding_principal") == "42,000.00"
    assert figure(html, "par30") == str(today["par"]["par30"]) == str(reports.ratio(Decimal(12000), Decimal(42000)))
    assert html.count("<rect ") == 24  # due and collected, twelve months
    assert 'data-chart="par"' in html
    assert re.search(r'class="par30" points="[\d.]+,[\d.]+ [\d.]+,[\d.]+"', html)  # yesterday's and today's
    rows = re.findall(r'<tr data-loan="(\d+)">', html)
    assert rows == [str(late.pk)]
    assert PortfolioDay.objects.count() == 2


def test_only_staff_see_the_dashboard():
    response = Client().get("/admin/dashboard/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
