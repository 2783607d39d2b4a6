"""Deciding and editing loans: only NEW changes, by its own agent or an admin, with history and one event each."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from common.outbox.models import OutboxMessage
from loans.models import Loan
from tests.conftest import ADMIN_ID, AGENT_ID, CUSTOMER_ID

OTHER_AGENT_ID = 17  # an approved agent, not the one who requested the loan

pytestmark = pytest.mark.django_db


def decide_url(loan_id: int) -> str:
    return f"/api/loan/approve-reject-loan/{loan_id}"


def edit_url(loan_id: int) -> str:
    return f"/api/loan/edit-loan/{loan_id}"


def test_admin_approves_a_new_loan(admin_api, new_loan):
    response = admin_api.json("put", decide_url(new_loan.id), {"status": "APPROVED"})

    loan = response.json()["data"]
    today = timezone.now().date()
    assert response.status_code == 200
    assert (loan["status"], loan["decided_by"]) == ("APPROVED", ADMIN_ID)
    assert loan["start_date"] == today.isoformat()
    assert date.fromisoformat(loan["end_date"]) > today
    assert loan["decided_at"] is not None


def test_admin_rejects_with_a_note(admin_api, new_loan):
    response = admin_api.json("put", decide_url(new_loan.id), {"status": "REJECTED", "note": "Income too low"})

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "REJECTED"
    assert response.json()["data"]["decision_note"] == "Income too low"
    assert response.json()["data"]["start_date"] is None


def test_a_second_decision_is_409(admin_api, new_loan):
    admin_api.json("put", decide_url(new_loan.id), {"status": "APPROVED"})

    response = admin_api.json("put", decide_url(new_loan.id), {"status": "REJECTED"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "loan_already_decided"
    assert Loan.objects.get(pk=new_loan.id).status == "APPROVED"


@pytest.mark.parametrize(
    "body", [{"status": "NEW"}, {"status": "approved"}, {}, {"status": "APPROVED", "note": "x" * 501}]
)
def test_a_bad_decision_is_400(admin_api, new_loan, body):
    response = admin_api.json("put", decide_url(new_loan.id), body)

    assert response.status_code == 400
    assert Loan.objects.get(pk=new_loan.id).status == "NEW"


def test_deciding_an_unknown_loan_is_404(admin_api):
    assert admin_api.json("put", decide_url(424242), {"status": "APPROVED"}).status_code == 404


@pytest.mark.parametrize("role", ["agent", "customer"])
def test_only_admins_decide(api, new_loan, role):
    assert api.as_role(role, AGENT_ID).json("put", decide_url(new_loan.id), {"status": "APPROVED"}).status_code == 403


def test_each_decision_publishes_exactly_one_event(admin_api, new_loan):
    admin_api.json("put", decide_url(new_loan.id), {"status": "APPROVED"})
    admin_api.json("put", decide_url(new_loan.id), {"status": "REJECTED"})

    assert sorted(OutboxMessage.objects.values_list("name", flat=True)) == ["loan.approved", "loan.created"]


def test_agent_edits_a_new_loan_and_the_terms_are_recomputed(agent_api, new_loan):
    response = agent_api.json("put", edit_url(new_loan.id), {"principal": "1000000.00"})

    loan = response.json()["data"]
    assert response.status_code == 200
    assert (loan["principal"], loan["months"], loan["interest"]) == ("1000000.00", 60, "10.00")
    assert (loan["emi"], loan["amount"]) == ("21247.04", "1274822.84")
    assert OutboxMessage.objects.filter(name="loan.terms_changed").count() == 1


def test_an_edit_tells_the_customer_the_old_and_the_new_terms(agent_api, new_loan):
    agent_api.json("put", edit_url(new_loan.id), {"principal": "1000000.00", "months": 48})

    [event] = OutboxMessage.objects.filter(name="loan.terms_changed")
    payload = event.message["payload"]
    assert (payload["customer_id"], payload["agent_id"], payload["changed_by"]) == (CUSTOMER_ID, AGENT_ID, AGENT_ID)
    assert (payload["old_principal"], payload["old_months"], payload["old_emi"]) == ("200000.00", 60, "4098.49")
    assert (payload["principal"], payload["months"], payload["interest"]) == ("1000000.00", 48, "10.00")
    assert payload["emi"] == Loan.objects.get(pk=new_loan.id).emi.to_eng_string()
    assert not OutboxMessage.objects.filter(name="loan.updated").exists()


def test_another_agent_cannot_edit_the_loan(api, new_loan):
    response = api.as_role("agent", OTHER_AGENT_ID).json("put", edit_url(new_loan.id), {"principal": "10000.00"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "loan_not_yours"
    assert Loan.objects.get(pk=new_loan.id).principal == Decimal("200000.00")
    assert not OutboxMessage.objects.filter(name="loan.terms_changed").exists()
    assert [r.history_change_reason for r in Loan.objects.get(pk=new_loan.id).history.all()] == ["created"]


def test_another_agent_is_refused_before_the_state_is_looked_at(api, admin_api, new_loan):
    admin_api.json("put", decide_url(new_loan.id), {"status": "APPROVED"})

    response = api.as_role("agent", OTHER_AGENT_ID).json("put", edit_url(new_loan.id), {"months": 12})

    assert (response.status_code, response.json()["error"]["code"]) == (403, "loan_not_yours")


def test_an_admin_edits_any_new_loan_and_is_recorded_as_the_editor(admin_api, new_loan):
    response = admin_api.json("put", edit_url(new_loan.id), {"months": 12})

    assert response.status_code == 200
    assert response.json()["data"]["months"] == 12
    assert response.json()["data"]["agent_id"] == AGENT_ID  # still the requesting agent's loan
    [event] = OutboxMessage.objects.filter(name="loan.terms_changed")
    assert (event.message["payload"]["changed_by"], event.message["payload"]["old_months"]) == (ADMIN_ID, 60)
    history = admin_api.get(f"/api/loan/{new_loan.id}/history").json()["data"]
    assert (history[-1]["change"], history[-1]["changed_by"]) == ("updated", ADMIN_ID)


def test_an_edit_that_changes_nothing_records_and_tells_nothing(agent_api, new_loan):
    response = agent_api.json("put", edit_url(new_loan.id), {"principal": "200000.00", "months": 60})

    assert response.status_code == 200
    assert response.json()["data"]["emi"] == "4098.49"
    assert not OutboxMessage.objects.filter(name="loan.terms_changed").exists()
    assert Loan.objects.get(pk=new_loan.id).history.count() == 1


def test_editing_months_only_keeps_the_principal(agent_api, new_loan):
    response = agent_api.json("put", edit_url(new_loan.id), {"months": 12})

    assert response.json()["data"]["principal"] == "200000.00"
    assert response.json()["data"]["months"] == 12


def test_an_empty_edit_is_400(agent_api, new_loan):
    assert agent_api.json("put", edit_url(new_loan.id), {}).status_code == 400


def test_an_edit_outside_the_limits_is_400_and_changes_nothing(agent_api, new_loan):
    response = agent_api.json("put", edit_url(new_loan.id), {"months": 0})

    assert response.status_code == 400
    assert Loan.objects.get(pk=new_loan.id).months == 60
    assert not OutboxMessage.objects.filter(name="loan.terms_changed").exists()


def test_a_decided_loan_cannot_be_edited(agent_api, admin_api, new_loan):
    admin_api.json("put", decide_url(new_loan.id), {"status": "APPROVED"})

    response = agent_api.json("put", edit_url(new_loan.id), {"months": 12})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "loan_not_editable"
    assert Loan.objects.get(pk=new_loan.id).months == 60


@pytest.mark.parametrize(("role", "approved"), [("customer", True), ("agent", False)])
def test_only_approved_agents_and_admins_edit(api, new_loan, role, approved):
    response = api.as_role(role, AGENT_ID, is_approved=approved).json("put", edit_url(new_loan.id), {"months": 12})

    assert response.status_code == 403


def test_editing_an_unknown_loan_is_404(agent_api):
    assert agent_api.json("put", edit_url(424242), {"months": 12}).status_code == 404


def test_history_shows_every_step_and_who_did_it(agent_api, admin_api, new_loan):
    agent_api.json("put", edit_url(new_loan.id), {"months": 12})
    admin_api.json("put", decide_url(new_loan.id), {"status": "APPROVED"})

    response = admin_api.get(f"/api/loan/{new_loan.id}/history")

    entries = response.json()["data"]
    assert response.status_code == 200
    assert [(e["change"], e["changed_by"], e["status"]) for e in entries] == [
        ("created", AGENT_ID, "NEW"),
        ("updated", AGENT_ID, "NEW"),
        ("approved", ADMIN_ID, "APPROVED"),
    ]
    assert entries[1]["fields"]["months"] == [60, 12]
    assert entries[2]["fields"]["status"] == ["NEW", "APPROVED"]
    assert entries[0]["fields"]["principal"] == [None, "200000.00"]


def test_a_loan_keeps_its_rate_when_the_operator_changes_the_policy(settings, agent_api, admin_api, new_loan):
    settings.LOAN_RATE_TIERS = [(Decimal("10000.00"), Decimal("5.00"))]

    kept = admin_api.get(f"/api/loan/{new_loan.id}").json()["data"]
    schedule = admin_api.get(f"/api/loan/{new_loan.id}/schedule").json()["data"]
    fresh = agent_api.json(
        "post", "/api/loan/customer-loan", {"customer_id": CUSTOMER_ID, "principal": "200000.00", "months": 60}
    )

    assert (kept["interest"], kept["emi"]) == ("8.45", "4098.49")
    assert schedule[0]["payment"] == "4098.49"
    assert fresh.json()["data"]["interest"] == "5.00"


def test_history_values_are_written_like_the_loan_object(admin_api, new_loan):
    admin_api.json("put", decide_url(new_loan.id), {"status": "APPROVED"})

    loan = admin_api.get(f"/api/loan/{new_loan.id}").json()["data"]
    approved = admin_api.get(f"/api/loan/{new_loan.id}/history").json()["data"][-1]["fields"]

    assert approved["decided_at"] == [None, loan["decided_at"]]
    assert loan["decided_at"].endswith("Z")
    assert approved["start_date"] == [None, loan["start_date"]]
