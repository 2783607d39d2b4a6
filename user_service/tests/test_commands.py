"""Management commands: `createadmin` and `seed_demo`, safe to run again and clear about what they did."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from common.outbox.models import OutboxMessage
from tests.factories import UserFactory
from users.models import Approval, Role, User

STRONG = "very-Strong-99"


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def createadmin(*extra: str, email: str = "root@example.com", password: str = STRONG) -> str:
    return run("createadmin", "--email", email, "--password", password, *extra)


# --------------------------------------------------------------------------- createadmin


@pytest.mark.django_db
def test_createadmin_creates_an_admin_who_can_use_the_admin_site():
    output = createadmin()

    admin = User.objects.get(email="root@example.com")
    assert "created" in output
    assert (admin.role, admin.is_staff, admin.is_superuser, admin.check_password(STRONG)) == ("admin", True, True, True)
    assert OutboxMessage.objects.filter(name="user.registered").count() == 1


@pytest.mark.django_db
def test_createadmin_with_exist_ok_accepts_an_existing_admin_and_changes_nothing():
    createadmin()

    output = createadmin("--exist-ok", password="another-Strong-77")

    assert "already exists" in output
    assert User.objects.filter(email="root@example.com").count() == 1
    assert User.objects.get(email="root@example.com").check_password(STRONG)


@pytest.mark.django_db
def test_createadmin_with_exist_ok_refuses_an_email_that_is_not_an_admin():
    UserFactory(email="root@example.com", role=Role.CUSTOMER)

    with pytest.raises(CommandError, match="already exists as a customer, not an active admin"):
        createadmin("--exist-ok")

    assert User.objects.get(email="root@example.com").role == Role.CUSTOMER


@pytest.mark.django_db
def test_createadmin_with_a_taken_email_fails():
    createadmin()

    with pytest.raises(CommandError, match="already exists"):
        createadmin(email="ROOT@example.com")


@pytest.mark.django_db
def test_createadmin_with_a_weak_password_fails_saying_why():
    with pytest.raises(CommandError, match=r"password: .*too common"):
        createadmin(password="password")

    assert not User.objects.filter(email="root@example.com").exists()


# --------------------------------------------------------------------------- seed_demo


def seeded() -> dict[str, User]:
    return {user.email: user for user in User.objects.filter(email__endswith="@example.com")}


@pytest.mark.django_db
def test_seed_demo_creates_the_demo_users_and_approves_the_demo_agent():
    run("seed_demo")

    users = seeded()
    assert users["admin@example.com"].role == Role.ADMIN
    assert users["agent@example.com"].approval == Approval.APPROVED
    assert users["pending.agent@example.com"].approval == Approval.PENDING
    assert {u.role for u in users.values()} == {Role.ADMIN, Role.AGENT, Role.CUSTOMER}
    approved = OutboxMessage.objects.get(name="agent.approved")
    assert approved.message["payload"]["decided_by"] == users["admin@example.com"].id


@pytest.mark.django_db
def test_seed_demo_twice_changes_nothing_the_second_time():
    run("seed_demo")
    before = (User.objects.count(), OutboxMessage.objects.count())

    output = run("seed_demo")

    assert (User.objects.count(), OutboxMessage.objects.count()) == before
    assert output.count(" exists") == 6


@pytest.mark.django_db
def test_seed_demo_leaves_a_rejected_demo_agent_rejected():
    UserFactory(email="agent@example.com", role=Role.AGENT, approval=Approval.REJECTED)

    output = run("seed_demo")

    assert seeded()["agent@example.com"].approval == Approval.REJECTED
    assert "agent@example.com was rejected by an admin; it stays rejected" in output
    assert not OutboxMessage.objects.filter(name__startswith="agent.").exists()


@pytest.mark.django_db
def test_seed_demo_does_not_take_an_existing_non_admin_for_the_admin():
    customer = UserFactory(email="admin@example.com", role=Role.CUSTOMER)

    output = run("seed_demo")

    assert seeded()["admin@example.com"].role == Role.CUSTOMER
    assert seeded()["agent@example.com"].approval == Approval.PENDING
    assert f"customer  admin@example.com (id {customer.id}) kept: not the demo admin" in output
    assert "agent@example.com left waiting: admin@example.com is not an active admin" in output
    assert not OutboxMessage.objects.filter(name="agent.approved").exists()
