"""Dead letters: no event is dropped; an operator sees each one and replays it (command or admin), notifying once."""

import io
import uuid

import pytest
from django.core.management import CommandError, call_command

from notifications import services, tasks
from notifications.models import DeadLetter, Notification
from notifications.tasks import consume_event
from tests.conftest import message, registered

pytestmark = pytest.mark.django_db(transaction=True)
CHANGELIST = "/admin/notifications/deadletter/"


def outage_letter(event: dict) -> DeadLetter:
    """The dead letter the consumer leaves after its database retries ran out (tests/test_event_retries.py
    produces it against a real outage on PostgreSQL)."""
    tasks.dead_letter(event, reason=DeadLetter.Reason.DATABASE_UNAVAILABLE, error="OperationalError: gone")
    return DeadLetter.objects.get(event_id=event["event_id"])


def replay(*argv: str) -> str:
    out = io.StringIO()
    call_command("replay_dead_letters", *argv, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ({"name": "loan.teleported"}, "loan.teleported"),
        ({"version": "2.0"}, "version 2.0"),
        ({"payload": {"user_id": "three"}}, "validation error"),
    ],
    ids=["unknown-event", "unsupported-version", "invalid-payload"],
)
def test_an_event_that_cannot_be_read_is_dead_lettered_as_rejected(mailbox, broken, why):
    event = message(registered(3)) | broken

    assert consume_event(event) == 0

    [letter] = DeadLetter.objects.all()
    assert (letter.reason, letter.status, letter.failures) == ("rejected", "dead", 1)
    assert (str(letter.event_id), letter.event_name) == (event["event_id"], event["name"])
    assert letter.correlation_id == "corr-1"
    assert why in letter.error
    assert letter.message == event
    assert not Notification.objects.exists()


def test_a_message_that_is_not_even_an_envelope_is_kept_under_a_hash_of_itself(mailbox):
    consume_event("not an event")
    consume_event("not an event")

    [letter] = DeadLetter.objects.all()
    assert letter.key.startswith("sha256:")
    assert (letter.event_id, letter.message, letter.failures) == (None, "not an event", 2)


def test_the_same_event_dead_lettered_twice_is_one_letter_with_two_failures(mailbox):
    event = message(registered(3)) | {"version": "9.0"}

    consume_event(event)
    consume_event(event)

    [letter] = DeadLetter.objects.all()
    assert letter.failures == 2
    assert letter.first_failed_at < letter.last_failed_at


def test_a_dead_letter_store_delivered_twice_by_the_broker_counts_once(mailbox):
    stored = {
        "message": message(registered(3)),
        "reason": "database_unavailable",
        "error": "gone",
        "first_failed_at": "2026-12-03T10:00:00+00:00",
        "last_failed_at": "2026-12-03T10:09:00+00:00",
        "failure_id": uuid.uuid4().hex,
    }

    tasks.store_dead_letter(stored)
    tasks.store_dead_letter(stored)

    [letter] = DeadLetter.objects.all()
    assert letter.failures == 1
    assert (letter.first_failed_at.isoformat(), letter.last_failed_at.isoformat()) == (
        "2026-12-03T10:00:00+00:00",
        "2026-12-03T10:09:00+00:00",
    )


def test_any_other_error_of_the_consumer_is_dead_lettered_and_replays_once_fixed(mailbox, monkeypatch):
    event = message(registered(3, email="ann@example.com"))
    real = services.notify_for_event

    def broken(*args):  # a bug in a release, fixed by the next one
        raise KeyError("template variable")

    monkeypatch.setattr(services, "notify_for_event", broken)
    consume_event(event)
    letter = DeadLetter.objects.get()
    assert (letter.reason, letter.error) == ("error", "KeyError: 'template variable'")

    monkeypatch.setattr(services, "notify_for_event", real)
    assert "1 replayed" in replay("--all")

    assert sorted(Notification.objects.values_list("channel", "status")) == [("email", "sent"), ("in_app", "sent")]
    assert [m["To"] for m in mailbox.messages] == ["ann@example.com"]


def test_the_command_replays_a_letter_once_marks_it_replayed_and_keeps_it(mailbox):
    letter = outage_letter(message(registered(3, email="ann@example.com")))

    first = replay("--id", str(letter.pk), "--by", "ops-ann")
    second = replay("--id", str(letter.pk))
    replay("--all")

    assert f"dead letter {letter.pk}: replayed" in first
    assert f"dead letter {letter.pk}: skipped (already replayed by command:ops-ann)" in second
    assert sorted(Notification.objects.values_list("channel", "status")) == [("email", "sent"), ("in_app", "sent")]
    assert [m["To"] for m in mailbox.messages] == ["ann@example.com"]
    letter.refresh_from_db()
    assert (letter.status, letter.replays, letter.replayed_by) == ("replayed", 1, "command:ops-ann")
    assert letter.replayed_at is not None
    assert letter.replay_result == "replayed: 1 notification(s) to deliver"


def test_replaying_an_event_that_was_consumed_meanwhile_notifies_nobody_twice(mailbox):
    event = message(registered(3, email="ann@example.com"))
    consume_event(event)  # e.g. the producer's outbox was replayed by hand first
    letter = outage_letter(event)

    replay("--id", str(letter.pk))

    assert Notification.objects.count() == 2
    assert len(mailbox.messages) == 1
    letter.refresh_from_db()
    assert letter.status == "replayed"


def test_all_replays_every_dead_letter_oldest_first_and_no_replayed_one(mailbox):
    old = outage_letter(message(registered(3)))
    new = outage_letter(message(registered(4)))
    replayed = outage_letter(message(registered(5)))
    replay("--id", str(replayed.pk))

    out = replay("--all")

    assert out.splitlines()[:2] == [
        f"dead letter {old.pk}: replayed (replayed: 1 notification(s) to deliver)",
        f"dead letter {new.pk}: replayed (replayed: 1 notification(s) to deliver)",
    ]
    assert "2 replayed, 0 rejected, 0 failed, 0 skipped" in out
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"replayed"}


def test_a_letter_still_unreadable_stays_dead_and_the_command_says_so(mailbox):
    consume_event(message(registered(3)) | {"version": "2.0"})
    letter = DeadLetter.objects.get()

    with pytest.raises(CommandError, match="not replayed"):
        replay("--id", str(letter.pk))

    letter.refresh_from_db()
    assert (letter.status, letter.replays) == ("dead", 1)
    assert letter.replay_result.startswith("still rejected: user.registered version 2.0")


def test_an_unknown_id_is_an_error(mailbox):
    with pytest.raises(CommandError, match="not replayed"):
        replay("--id", "999")


def test_the_command_needs_ids_or_all():
    with pytest.raises(CommandError, match="one of the arguments --id --all is required"):
        call_command("replay_dead_letters")


def test_the_admin_lists_dead_letters_read_only_with_reason_and_times(operator, mailbox):
    letter = outage_letter(message(registered(3), correlation_id="corr-outage"))

    page = operator.get(CHANGELIST).content.decode()
    detail = operator.get(f"{CHANGELIST}{letter.pk}/change/").content.decode()

    assert f"{CHANGELIST}{letter.pk}/change/" in page
    assert "database_unavailable" in page
    assert "user.registered" in page
    assert str(letter.event_id) in page
    assert "corr-outage" in detail
    assert 'name="reason"' not in detail  # read-only: no form field
    assert operator.get(f"{CHANGELIST}{letter.pk}/delete/").status_code == 403
    assert operator.get(f"{CHANGELIST}add/").status_code == 403


def test_the_admin_action_replays_once_and_records_who(operator, mailbox):
    letter = outage_letter(message(registered(3, email="ann@example.com")))

    first = operator.post(CHANGELIST, {"action": "replay", "_selected_action": [letter.pk]}, follow=True)
    second = operator.post(CHANGELIST, {"action": "replay", "_selected_action": [letter.pk]}, follow=True)

    assert "1 dead letter(s) replayed." in first.content.decode()
    assert "0 dead letter(s) replayed." in second.content.decode()
    assert "already replayed by admin-1" in second.content.decode()
    assert sorted(Notification.objects.values_list("channel", "status")) == [("email", "sent"), ("in_app", "sent")]
    assert [m["To"] for m in mailbox.messages] == ["ann@example.com"]
    letter.refresh_from_db()
    assert (letter.status, letter.replayed_by, letter.replays) == ("replayed", "admin-1", 1)


def test_the_admin_action_reports_a_letter_that_is_still_rejected(operator, mailbox):
    consume_event(message(registered(3)) | {"name": "x.y"})
    letter = DeadLetter.objects.get()

    page = operator.post(CHANGELIST, {"action": "replay", "_selected_action": [letter.pk]}, follow=True)

    assert f"Dead letter {letter.pk} not replayed: x.y" in page.content.decode()
    letter.refresh_from_db()
    assert letter.status == "dead"
