"""PDF statements through the API: queued, rendered by the worker's task, downloaded as application/pdf."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from pypdf import PdfReader

from loans import statements, tasks
from loans.models import Statement
from tests.conftest import disbursed, months_ago, repay

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def request_statement(api, loan_id: int, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(f"/api/loan/{loan_id}/statements", format="json")
    return response, callbacks


def test_a_statement_is_queued_rendered_and_downloaded(customer_api, agent_api, django_capture_on_commit_callbacks):
    loan = disbursed(principal="10000.00", months=12, on=months_ago(3))
    repay(agent_api, loan.id, "871.97", loan.instalments.get(number=1).due_date)

    response, callbacks = request_statement(customer_api, loan.id, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.json()
    statement = response.json()["data"]
    assert (statement["status"], statement["download"]) == ("queued", None)
    assert len(callbacks) == 1  # the render task is sent once the row is committed
    path = f"/api/loan/{loan.id}/statements/{statement['id']}"
    not_ready = customer_api.get(f"{path}/pdf")
    assert not_ready.status_code == 409
    assert not_ready.json()["error"]["code"] == "statement_not_ready"

    assert tasks.render_statement(statement["id"]) == "ready"

    state = customer_api.get(path).json()["data"]
    assert state["status"] == "ready"
    assert state["download"] == f"{path}/pdf"
    download = customer_api.get(f"{path}/pdf", HTTP_ACCEPT="application/pdf")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    text = pdf_text(b"".join(download.streaming_content))
    loan.refresh_from_db()
    assert f"#{loan.id}" in text
    assert f"{loan.total_outstanding:,.2f}" in text
    negotiated = customer_api.get(path, HTTP_ACCEPT="application/pdf")
    assert negotiated.status_code == 200
    assert negotiated["Content-Type"] == "application/pdf"


def test_rendering_twice_keeps_one_file(customer_api, django_capture_on_commit_callbacks):
    loan = disbursed(months=6, on=months_ago(1))
    response, _ = request_statement(customer_api, loan.id, django_capture_on_commit_callbacks)
    statement_id = response.json()["data"]["id"]

    tasks.render_statement(statement_id)
    first = Statement.objects.get(pk=statement_id).file.name
    tasks.render_statement(statement_id)  # a redelivered task

    assert Statement.objects.get(pk=statement_id).file.name == first


def test_another_customers_statement_is_404(customer_api, other_customer_api, django_capture_on_commit_callbacks):
    loan = disbursed(months=6, on=months_ago(1))
    response, _ = request_statement(customer_api, loan.id, django_capture_on_commit_callbacks)
    statement_id = response.json()["data"]["id"]

    assert other_customer_api.post(f"/api/loan/{loan.id}/statements").status_code == 404
    assert other_customer_api.get(f"/api/loan/{loan.id}/statements/{statement_id}").status_code == 404
    other = disbursed(months=6, on=months_ago(1))
    wrong_loan = customer_api.get(f"/api/loan/{other.id}/statements/{statement_id}")
    assert wrong_loan.status_code == 404
    assert wrong_loan.json()["error"]["code"] == "statement_not_found"


def test_a_statement_needs_a_disbursed_loan(admin_api, new_loan):
    response = admin_api.post(f"/api/loan/{new_loan.id}/statements")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "loan_not_active"


def test_a_failing_render_is_retried_then_failed(customer_api, django_capture_on_commit_callbacks, monkeypatch):
    loan = disbursed(months=6, on=months_ago(1))
    response, _ = request_statement(customer_api, loan.id, django_capture_on_commit_callbacks)
    statement_id = response.json()["data"]["id"]

    def broken(data):
        raise RuntimeError("disk full")

    monkeypatch.setattr(statements.statement_pdf, "render_statement", broken)
    results = [tasks.render_statement(statement_id) for _ in range(statements.MAX_ATTEMPTS)]

    assert results == ["queued"] * (statements.MAX_ATTEMPTS - 1) + ["failed"]
    assert "disk full" in customer_api.get(f"/api/loan/{loan.id}/statements/{statement_id}").json()["data"]["error"]


def test_the_sweep_sends_again_statements_whose_task_was_lost(customer_api, django_capture_on_commit_callbacks):
    loan = disbursed(months=6, on=months_ago(1))
    response, _ = request_statement(customer_api, loan.id, django_capture_on_commit_callbacks)
    statement_id = response.json()["data"]["id"]
    Statement.objects.filter(pk=statement_id).update(queued_at=timezone.now() - timedelta(minutes=10))

    assert [str(pk) for pk in statements.stale_statements(older_than=tasks.STALE_AFTER)] == [statement_id]
    assert statements.stale_statements(older_than=tasks.STALE_AFTER) == []  # marked queued again just now
