"""`manage.py replay_dead_letters --id N [--id M ...] | --all`: consume dead-lettered events again."""

import getpass

from django.core.management.base import BaseCommand, CommandError

from notifications import services, tasks


class Command(BaseCommand):
    help = "Replay dead-lettered events (see the admin's Dead letters): each is marked replayed, none notifies twice."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--id", type=int, action="append", dest="ids", help="A dead letter's id (repeatable).")
        which.add_argument("--all", action="store_true", dest="replay_all", help="Every dead letter not replayed yet.")
        parser.add_argument("--by", default="", help="Who replays, recorded on each letter (default: the OS user).")

    def handle(self, *args, ids: list[int] | None, replay_all: bool, by: str, **options):
        outcomes = services.replay_dead_letters(
            letter_ids=None if replay_all else ids, by=f"command:{by or _os_user()}"
        )
        tasks.queue_replayed(outcomes)
        for outcome in outcomes:
            self.stdout.write(f"dead letter {outcome.letter_id}: {outcome.outcome} ({outcome.detail})")
        if ids:
            for missing in sorted(set(ids) - {outcome.letter_id for outcome in outcomes}):
                self.stderr.write(f"dead letter {missing}: no such dead letter")
        counts = {
            kind: sum(o.outcome == kind for o in outcomes) for kind in ("replayed", "rejected", "failed", "skipped")
        }
        self.stdout.write(", ".join(f"{count} {kind}" for kind, count in counts.items()))
        if counts["rejected"] or counts["failed"] or (ids and len(outcomes) < len(set(ids))):
            raise CommandError("some dead letters were not replayed; see above (they stay dead)")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
