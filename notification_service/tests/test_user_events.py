"""user.profile_changed and user.deactivated: the recipient copy stays current, a deactivated user is sent nothing."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from common import events
from notifications.models import DeadLetter, Notification, Recipient
from notifications.tasks import consume_event, queue_deliveries
from tests.conftest import loan_event, message, registered

pytestmark = pytest.mark.django_db(transaction=True)


def user_event(payload: events.Payload, *, minutes_ago: int = 0) -> dict:
    """The message of `payload`, occurred `minutes_ago` (relays may deliver an older event after a newer one)."""
    envelope = events.Envelope.wrap(payload, correlation_id="corr-u")
    return envelope.model_copy(
        update={"occurred_at": envelope.occurred_at - timedelta(minutes=minutes_ago)}
    ).to_message()


def profile(user_id: int = 3, *, first_name: str = "Anna", role: str = "customer", email: str = "anna@example.com"):
    return events.UserProfileChanged(user_id=user_id, email=email, first_name=first_name, last_name="Berg", role=role)


def deactivated(user_id: int = 3, role: str = "customer") -> events.UserDeactivated:
    return events.UserDeactivated(user_id=user_id, email=f"user{user_id}@example.com", role=role, deactivated_by=1)


@pytest.fixture
def ann(mailbox):
    consume_event(user_event(registered(3, email="ann@example.com"), minutes_ago=60))
    mailbox.messages.clear()


def test_a_profile_change_refreshes_the_recipient_and_notifies_nobody(ann, mailbox):
    assert consume_event(user_event(profile(role="agent"))) == 0

    recipient = Recipient.objects.get(pk=3)
    assert (recipient.first_name, recipient.last_name, recipient.email, recipient.role) == (
        "Anna",
        "Berg",
        "anna@example.com",
        "agent",
    )
    assert not Notification.objects.exclude(kind="user.registered").exists()
    assert mailbox.messages == []


def test_the_next_email_goes_to_the_changed_address(ann, mailbox):
    consume_event(user_event(profile()))

    consume_event(message(loan_event(events.LoanCreated, customer_id=3)))

    [email] = mailbox.messages
    assert email["To"] == "anna@example.com"


def test_an_older_profile_change_arriving_late_changes_nothing(ann):
    consume_event(user_event(profile(first_name="Newest")))

    consume_event(user_event(profile(first_name="Older"), minutes_ago=5))

    assert Recipient.objects.get(pk=3).first_name == "Newest"


def test_a_deactivated_user_is_marked_and_told_nothing(ann, mailbox):
    assert consume_event(user_event(deactivated())) == 0

    recipient = Recipient.objects.get(pk=3)
    assert recipient.is_active is False
    assert recipient.deactivated_at is not None
    assert mailbox.messages == []


def test_later_events_for_a_deactivated_user_are_skipped_on_every_channel(ann, mailbox):
    consume_event(user_event(deactivated()))

    assert consume_event(message(loan_event(events.LoanCreated, customer_id=3))) == 0

    skipped = Notification.objects.filter(kind="loan.created")
    assert sorted(skipped.values_list("channel", "status")) == [("email", "skipped"), ("in_app", "skipped")]
    assert {n.last_error for n in skipped} == {"recipient deactivated: not delivered"}
    assert mailbox.messages == []


def test_an_email_queued_before_the_deactivation_is_skipped_when_its_turn_comes(ann, mailbox):
    pending = Notification.objects.create(user_id=3, channel="email", kind="admin.message", subject="Hi", body="b")
    consume_event(user_event(deactivated()))

    queue_deliveries([pending.pk])

    pending.refresh_from_db()
    assert (pending.status, pending.attempts) == ("skipped", 0)
    assert mailbox.messages == []


def test_an_admins_message_to_a_deactivated_user_is_accepted_and_skipped(ann, api, mailbox):
    consume_event(user_event(deactivated()))

    response = api.as_role("admin", 1).post(
        "/api/notifications/send", {"user_id": 3, "channel": "email", "subject": "Hi", "body": "b"}, format="json"
    )

    assert response.status_code == 202
    assert response.json()["data"]["status"] == "skipped"
    assert mailbox.messages == []


def test_a_deactivation_older_than_the_last_profile_change_still_deactivates(ann):
    consume_event(user_event(profile(first_name="Newest")))

    consume_event(user_event(deactivated(), minutes_ago=5))

    recipient = Recipient.objects.get(pk=3)
    assert (recipient.is_active, recipient.first_name) == (False, "Newest")


def admin_mirror(user_id: int):
    """The staff row this service's admin sign-in keeps for a user_service admin."""
    return get_user_model().objects.create(username=f"admin-{user_id}", is_staff=True, is_superuser=True)


def test_a_deactivated_admin_loses_this_services_admin(mailbox):
    mirror = admin_mirror(9)
    browser = Client()
    browser.force_login(mirror, backend="common.admin_sso.UserServiceAdminBackend")
    assert browser.get("/admin/").status_code == 200

    consume_event(user_event(deactivated(9, role="admin")))

    mirror.refresh_from_db()
    assert mirror.is_active is False
    assert browser.get("/admin/").status_code == 302  # the open session no longer gets in
    assert not DeadLetter.objects.exists()


def test_an_admin_demoted_by_a_role_change_loses_this_services_admin(mailbox):
    mirror, other = admin_mirror(9), admin_mirror(10)

    consume_event(user_event(profile(9, role="customer")))
    consume_event(user_event(profile(10, role="admin")))

    mirror.refresh_from_db()
    other.refresh_from_db()
    assert (mirror.is_active, other.is_active) == (False, True)


def test_a_user_without_an_admin_mirror_is_deactivated_all_the_same(mailbox):
    consume_event(user_event(deactivated(11)))

    assert Recipient.objects.get(pk=11).is_active is False
    assert not DeadLetter.objects.exists()
