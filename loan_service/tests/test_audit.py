"""loan_service's audit trail (common.audit): one row per money decision, in its transaction; admins read it."""

import uuid
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from common.audit.models import AuditEvent
from loans import services
from loans.models import Loan
from tests.conftest import ADMIN_ID, AGENT_ID, disbursed, repay
from tests.test_admin_servicing import sign_in

pytestmark = pytest.mark.django_db

CLIENT = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.7", "HTTP_USER_AGENT": "ops-console/1"}


def rows(event: str, loan_id: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=event, subject_type="loan", subject_id=str(loan_id)))


def only_row(event: str, loan_id: int) -> AuditEvent:
    found = rows(event, loan_id)
    assert len(found) == 1, found
    return found[0]


def test_an_approval_through_the_api_is_recorded_once_with_who_where_and_what(admin_api, new_loan):
    reply = admin_api.put(
        f"/api/loan/approve-reject-loan/{new_loan.id}",
        {"status": "APPROVED"},
        format="json",
        HTTP_X_CORRELATION_ID="audit-approve-1",
        **CLIENT,
    )
    assert reply.status_code == 200, reply.json()
    row = only_row("loan.approved", new_loan.id)
    assert (row.actor_id, row.outcome, row.ip, row.user_agent) == (ADMIN_ID, "success", "198.51.100.7", "ops-console/1")
    assert row.correlation_id == "audit-approve-1"
    assert row.details == {"principal": "200000.00", "note": ""}


def test_a_refused_decision_writes_no_row(admin_api, new_loan):
    path = f"/api/loan/approve-reject-loan/{new_loan.id}"
    assert admin_api.put(path, {"status": "REJECTED", "note": "thin file"}, format="json").status_code == 200
    again = admin_api.put(path, {"status": "APPROVED"}, format="json")
    assert again.status_code == 409
    assert only_row("loan.rejected", new_loan.id).details == {"principal": "200000.00", "note": "thin file"}
    assert rows("loan.approved", new_loan.id) == []


def test_a_change_of_terms_records_the_old_and_new_terms(agent_api, new_loan):
    reply = agent_api.put(f"/api/loan/edit-loan/{new_loan.id}", {"months": 48}, format="json")
    assert reply.status_code == 200, reply.json()
    row = only_row("loan.terms_changed", new_loan.id)
    assert row.actor_id == AGENT_ID
    assert (row.details["old_months"], row.details["months"], row.details["by_admin"]) == (60, 48, False)
    # The same terms again change nothing, so nothing is recorded.
    assert agent_api.put(f"/api/loan/edit-loan/{new_loan.id}", {"months": 48}, format="json").status_code == 200
    assert len(rows("loan.terms_changed", new_loan.id)) == 1


def test_a_disbursement_is_recorded_once_even_when_its_request_is_replayed(admin_api, new_loan):
    services.decide_loan(loan_id=new_loan.id, admin_id=ADMIN_ID, status="APPROVED")
    key = str(uuid.uuid4())
    for _ in range(2):
        reply = admin_api.post(f"/api/loan/{new_loan.id}/disburse", {}, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert reply.status_code == 200, reply.json()
    assert only_row("loan.disbursed", new_loan.id).details["amount"] == "200000.00"


def test_a_cancellation_is_recorded(admin_api, new_loan, settings):
    services.decide_loan(loan_id=new_loan.id, admin_id=ADMIN_ID, status="APPROVED")
    long_ago = timezone.now() - timedelta(days=settings.LOAN_DISBURSE_WITHIN_DAYS + 1)
    Loan.objects.filter(pk=new_loan.id).update(decided_at=long_ago)
    reply = admin_api.post(f"/api/loan/{new_loan.id}/cancel", {"note": "customer withdrew"}, format="json")
    assert reply.status_code == 200, reply.json()
    assert only_row("loan.cancelled", new_loan.id).details == {"note": "customer withdrew"}


def test_a_write_off_records_what_was_lost(admin_api, settings):
    loan = disbursed(months=12, on=timezone.localdate() - timedelta(days=150))
    settings.LOAN_WRITE_OFF_MIN_DPD = 1
    reply = admin_api.post(f"/api/loan/{loan.id}/write-off", {"note": "customer unreachable"}, format="json")
    assert reply.status_code == 200, reply.json()
    details = only_row("loan.written_off", loan.id).details
    assert details["principal"] == reply.json()["data"]["written_off_principal"]
    assert details["note"] == "customer unreachable"
    assert details["days_past_due"] >= 1


def test_a_reversal_is_recorded_and_a_second_one_refused_writes_nothing(admin_api, agent_api):
    loan = disbursed()
    repayment = repay(agent_api, loan.id, "100.00").json()["data"]["transaction"]
    path = f"/api/loan/{loan.id}/transactions/{repayment['id']}/reverse"
    assert admin_api.post(path, {"note": "bounced"}, format="json").status_code == 201
    assert admin_api.post(path, {"note": "again"}, format="json").status_code == 409
    row = only_row("loan.transaction_reversed", loan.id)
    assert (row.details["transaction_id"], row.details["amount"], row.details["note"]) == (
        repayment["id"],
        "100.00",
        "bounced",
    )


def listed(reply) -> list[str]:
    assert reply.status_code == 200, reply.json()
    return [f"{row['event']}:{row['subject_id']}" for row in reply.json()["data"]["results"]]


def test_admins_read_the_trail_filtered_and_paged(admin_api, new_loan):
    other = services.create_loan(agent_id=AGENT_ID, customer_id=4, principal=new_loan.principal, months=12)
    services.decide_loan(loan_id=new_loan.id, admin_id=ADMIN_ID, status="APPROVED")
    services.decide_loan(loan_id=other.id, admin_id=ADMIN_ID, status="REJECTED")
    everything = [f"loan.rejected:{other.id}", f"loan.approved:{new_loan.id}"]
    assert listed(admin_api.get("/api/loan/audit")) == everything
    assert listed(admin_api.get(f"/api/loan/audit?subject=loan:{other.id}")) == everything[:1]
    assert listed(admin_api.get("/api/loan/audit?event=loan.approved")) == everything[1:]
    assert listed(admin_api.get("/api/loan/audit?event=loan.")) == everything
    assert listed(admin_api.get(f"/api/loan/audit?actor={ADMIN_ID}")) == everything
    assert listed(admin_api.get(f"/api/loan/audit?actor={AGENT_ID}")) == []
    today = timezone.localdate()
    assert listed(admin_api.get(f"/api/loan/audit?from={today}&to={today}")) == everything
    first = admin_api.get("/api/loan/audit/?page_size=1").json()["data"]
    assert (first["count"], [row["event"] for row in first["results"]]) == (2, ["loan.rejected"])
    assert listed(admin_api.get(f"/api/loan/audit?page_size=1&cursor={first['next_cursor']}")) == everything[1:]
    bad = admin_api.get(f"/api/loan/audit?from={today}&to={today - timedelta(days=1)}")
    assert (bad.status_code, list(bad.json()["error"]["details"])) == (400, ["from"])


def test_agents_and_customers_may_not_read_the_trail(agent_api, customer_api, api):
    assert agent_api.get("/api/loan/audit").status_code == 403
    assert customer_api.get("/api/loan/audit").status_code == 403
    assert api.get("/api/loan/audit").status_code == 401


@pytest.fixture
def signed_in(user_service_server, client):
    return sign_in(client, user_service_server)


def test_the_admin_shows_the_trail_but_cannot_add_change_or_delete(signed_in, new_loan):
    services.decide_loan(loan_id=new_loan.id, admin_id=ADMIN_ID, status="APPROVED")
    row = only_row("loan.approved", new_loan.id)
    listing = signed_in.get("/admin/audit/auditevent/")
    assert listing.status_code == 200
    assert b"loan.approved" in listing.content
    assert b"delete_selected" not in listing.content
    assert signed_in.get("/admin/audit/auditevent/add/").status_code == 403
    assert signed_in.get(f"/admin/audit/auditevent/{row.pk}/change/").status_code == 200  # to look at
    assert signed_in.post(f"/admin/audit/auditevent/{row.pk}/change/", {"event": "x.y"}).status_code == 403
    assert signed_in.get(f"/admin/audit/auditevent/{row.pk}/delete/").status_code == 403
    assert signed_in.post(f"/admin/audit/auditevent/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert only_row("loan.approved", new_loan.id).event == "loan.approved"


def test_an_action_outside_any_request_is_recorded_without_a_client(new_loan):
    approved_at = timezone.make_aware(datetime.combine(timezone.localdate(), time(9)))
    services.decide_loan(loan_id=new_loan.id, admin_id=ADMIN_ID, status="APPROVED")
    row = only_row("loan.approved", new_loan.id)
    assert (row.ip, row.user_agent, row.actor_id) == (None, "", ADMIN_ID)
    assert row.occurred_at >= approved_at - timedelta(days=1)
