"""Drill: notification_service's database is down longer than the event consumer's retries.

The event is not lost: it waits as a dead letter on the broker until the database answers,
an operator sees it and replays it with `manage.py replay_dead_letters`, and the customer
is notified exactly once, also when the replay is run twice.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

import manage_all
from tests.actors import approved_agent, sign_up
from tests.harness import wait_for
from tests.test_drills import _notices, database_refusing_connections

DATABASE = os.environ.get("E2E_NOTIFICATION_SERVICE_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(not DATABASE, reason="needs PostgreSQL: the drill refuses the database's connections")
DEAD_LETTERED = "event dead-lettered: database errors on every retry"
STORED = "dead letter stored"


@pytest.fixture(scope="module")
def people(system, admin):
    return {
        "admin": admin,
        "customer": sign_up(system.gateway, "customer"),
        "agent": approved_agent(system.gateway, admin),
    }


def worker_records(system, message: str) -> list[dict]:
    return [r for r in system.log_records("notification-worker") if r.get("message", "").startswith(message)]


def replay_dead_letters(system, *argv: str) -> str:
    """`manage.py replay_dead_letters ...` of notification_service, as an operator runs it."""
    [service] = [s for s in manage_all.SERVICES if s.name == "notification_service"]
    env = manage_all.service_env(service, base_port=system.base_port, var=system.var, extra=system.extra_env)
    done = subprocess.run(
        [manage_all.python(), "manage.py", "replay_dead_letters", *argv, "--by", "drill"],
        cwd=service.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_an_event_outliving_its_retries_is_dead_lettered_and_replayed_once(system, people, smtp):
    customer, agent = people["customer"], people["agent"]
    already = len(worker_records(system, DEAD_LETTERED))

    with database_refusing_connections(DATABASE):
        created = agent.api.post(
            "/api/loan/customer-loan", {"customer_id": customer.id, "principal": "30000.00", "months": 9}
        )
        assert created.status == 201, created.body  # loan_service's own database is up: the write succeeds
        # The consumer's retries (NOTIFICATION_EVENT_MAX_RETRIES, 1-2 s apart in this suite) run out while it is down.
        lost = wait_for(
            lambda: worker_records(system, DEAD_LETTERED)[already:],
            timeout=90,
            message="the consumer's retries to run out",
        )
        time.sleep(3)  # the dead-letter task is retrying too: it cannot store the letter yet
        assert not [r for r in worker_records(system, STORED) if r.get("event") == "loan.created"]

    [event] = [r for r in lost if r.get("event") == "loan.created"]
    loan = created.data
    wait_for(
        lambda: [r for r in worker_records(system, STORED) if r.get("event") == "loan.created"],
        timeout=30,
        message="the dead letter to be stored once the database answers",
    )
    assert _notices(customer, "loan.created", [loan]) == {}  # nothing was notified yet: the event waits

    first = replay_dead_letters(system, "--all")
    second = replay_dead_letters(system, "--all")

    assert "replayed" in first
    assert "0 replayed" in second
    notices = wait_for(
        lambda: (found := _notices(customer, "loan.created", [loan])) == {loan["id"]: ["email", "in_app"]} and found,
        timeout=30,
        message="the replayed event's notifications",
    )
    assert notices == {loan["id"]: ["email", "in_app"]}
    time.sleep(1)  # give a duplicate the chance to show
    mails = [m for m in smtp.messages_to(customer.email) if f"#{loan['id']}" in m["Subject"] + m.get_payload()]
    assert len(mails) == 1
    assert event["event_id"]
