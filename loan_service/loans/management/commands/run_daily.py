"""`manage.py run_daily [--as-of YYYY-MM-DD]`: the daily job, for operators and tests (beat runs it each day).

Safe to run again for the same day, and while the service runs: what was done is not done twice.
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from loans import daily


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Late fees, overdue notices, reminders and arrears of every disbursed loan, as of a day (default today)."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=_day, default=None, help="the day to run for (default today, UTC)")
        parser.add_argument("--batch-size", type=int, default=None, help="loans per transaction")

    def handle(self, *args, as_of=None, batch_size=None, **options):
        as_of = as_of or timezone.localdate()
        if as_of > timezone.localdate():
            raise CommandError("--as-of must not be in the future")
        self.stdout.write(str(daily.run_daily(as_of=as_of, batch_size=batch_size)))
