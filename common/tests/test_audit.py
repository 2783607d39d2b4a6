"""common.audit: record(), the append-only table (ORM, admin and database trigger) and the list API."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.admin.sites import AdminSite
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.utils import timezone

from common.audit import FAILURE, record
from common.audit.admin import AuditEventAdmin
from common.audit.models import AppendOnly, AuditEvent
from common.audit.recorder import client_ip
from common.correlation import correlation_scope

pytestmark = pytest.mark.django_db


def test_record_keeps_the_client_address_behind_the_gateway_agent_and_correlation_id():
    request = RequestFactory().post(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9", HTTP_USER_AGENT="x" * 600
    )
    with correlation_scope("req-42"):
        row = record(
            "login.failed", request=request, subject_type="user", subject_id=7, outcome=FAILURE, reason="wrong_password"
        )
    row = AuditEvent.objects.get(pk=row.pk)
    assert (row.ip, row.correlation_id, len(row.user_agent)) == ("203.0.113.9", "req-42", 512)
    assert (row.event, row.outcome, row.reason, row.subject_type, row.subject_id) == (
        "login.failed", "failure", "wrong_password", "user", "7",
    )  # fmt: skip
    assert row.actor_id is None
    assert row.occurred_at is not None


def test_a_forwarded_value_that_is_no_address_is_not_kept():
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert AuditEvent.objects.get(pk=record("loan.approved", request=request).pk).ip is None


def test_record_rolls_back_with_the_callers_transaction():
    def change_that_fails():
        with transaction.atomic():
            record("loan.approved", actor_id=1, details={"amount": "10.00"})
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        change_that_fails()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("event", "kwargs"),
    [
        ("Loan Approved", {}),
        ("loan", {}),
        ("loan.approved", {"outcome": "maybe"}),
        ("a.b", {"details": {"x": "y" * 5000}}),
    ],
)
def test_record_refuses_what_no_service_should_write(event, kwargs):
    with pytest.raises(ValueError, match=r"(?i)audit"):
        record(event, **kwargs)
    assert not AuditEvent.objects.exists()


@pytest.fixture
def row():
    return record("loan.approved", actor_id=1, subject_type="loan", subject_id=3)


def test_the_orm_cannot_change_or_delete_a_row(row):
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=row.pk).update(event="loan.rejected")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=row.pk).delete()
    stored = AuditEvent.objects.get(pk=row.pk)
    stored.event = "loan.rejected"
    with pytest.raises(AppendOnly):
        stored.save()
    with pytest.raises(AppendOnly):
        stored.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.bulk_update([stored], ["event"])
    assert AuditEvent.objects.get(pk=row.pk).event == "loan.approved"


@pytest.mark.parametrize("sql", ["UPDATE audit_auditevent SET event = 'loan.rejected'", "DELETE FROM audit_auditevent"])
def test_the_database_refuses_raw_update_and_delete(row, sql):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert AuditEvent.objects.get(pk=row.pk).event == "loan.approved"


def test_the_admin_may_only_look(row):
    model_admin = AuditEventAdmin(AuditEvent, AdminSite())
    request = RequestFactory().get("/admin/audit/auditevent/")
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, row)
    assert not model_admin.has_delete_permission(request, row)
    request.user = type("Staff", (), {"has_perm": lambda self, perm: True})()
    assert "delete_selected" not in model_admin.get_actions(request)


def rows_of(reply) -> list[int]:
    assert reply.status_code == 200, reply.json()
    return [event["id"] for event in reply.json()["data"]["results"]]


def test_the_list_is_for_admins_only(api):
    assert api.get("/audit").status_code == 401
    for role in ("customer", "agent"):
        assert api.as_role(role, is_approved=True).get("/audit").status_code == 403


def test_the_list_filters_and_pages_newest_first(api):
    login = record("login.succeeded", actor_id=5, subject_type="user", subject_id=5)
    failed = record("login.failed", subject_type="user", subject_id=5, outcome=FAILURE, reason="wrong_password")
    loan = record("loan.approved", actor_id=1, subject_type="loan", subject_id=5, details={"amount": "12.50"})
    admin = api.as_role("admin", user_id=1)
    assert rows_of(admin.get("/audit")) == [loan.id, failed.id, login.id]
    assert rows_of(admin.get("/audit?actor=5")) == [login.id]
    assert rows_of(admin.get("/audit?subject=user:5")) == [failed.id, login.id]
    assert rows_of(admin.get("/audit?subject=5")) == [loan.id, failed.id, login.id]
    assert rows_of(admin.get("/audit?event=login.")) == [failed.id, login.id]
    assert rows_of(admin.get("/audit?event=login.failed")) == [failed.id]
    assert rows_of(admin.get("/audit?outcome=failure")) == [failed.id]
    first = admin.get("/audit?page_size=2").json()["data"]
    assert [event["id"] for event in first["results"]] == [loan.id, failed.id]
    assert rows_of(admin.get(f"/audit?page_size=2&cursor={first['next_cursor']}")) == [login.id]
    shown = first["results"][0]
    assert (shown["details"], shown["subject_id"], shown["actor_id"]) == ({"amount": "12.50"}, "5", 1)


def test_the_list_filters_by_time(api):
    row = record("loan.approved", actor_id=1)
    admin = api.as_role("admin", user_id=1)
    today = timezone.localdate()
    assert rows_of(admin.get(f"/audit?from={today}&to={today}")) == [row.id]
    assert rows_of(admin.get(f"/audit?to={today - timedelta(days=1)}")) == []
    later = (row.occurred_at + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert rows_of(admin.get(f"/audit?from={later}")) == []
    assert rows_of(admin.get(f"/audit?to={later}")) == [row.id]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("from=2026-12-04&to=2026-12-03", "from"),
        ("actor=abc", "actor"),
        ("event=Login%20Failed", "event"),
        ("subject=loan:", "subject"),
        ("outcome=maybe", "outcome"),
        ("cursor=forged", "cursor"),
    ],
)
def test_bad_filters_are_400_in_the_envelope(api, query, field):
    reply = api.as_role("admin", user_id=1).get(f"/audit?{query}")
    assert reply.status_code == 400
    body = reply.json()
    assert body["success"] is False
    assert field in body["error"]["details"]


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["to=9999-12-31", "from=0001-01-01T00:00:00%2B05:00", "to=9999-12-31T23:59:59-05:00"])
def test_a_moment_at_the_edge_of_the_calendar_is_a_400(api, query):
    response = api.as_role("admin", user_id=1).get(f"/audit?{query}")

    assert response.status_code == 400


def test_a_scoped_ipv6_address_is_not_kept():
    assert client_ip(SimpleNamespace(META={"REMOTE_ADDR": "fe80::1%eth0"})) is None
    assert client_ip(SimpleNamespace(META={"REMOTE_ADDR": "2001:db8::1"})) == "2001:db8::1"
