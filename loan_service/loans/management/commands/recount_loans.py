"""`manage.py recount_loans`: recompute the kept status counts and portfolio slices from the loan rows, under a lock.

The admin list's `count` is LoanStatusCount, kept by the services in each change's
transaction. A write that bypasses them (SQL by hand, a partial restore) makes it
drift; run this afterwards. Safe while the service is running: writers wait for it.
"""

from django.core.management.base import BaseCommand

from loans import services


class Command(BaseCommand):
    help = "Recompute the per-status loan counts and the portfolio slices from the loan rows (locks loan writes)."

    def handle(self, *args, **options):
        changes = services.recount_loan_statuses()
        repaired = [f"{status}: {before} -> {after}" for status, (before, after) in changes.items() if before != after]
        for line in repaired:
            self.stdout.write(line)
        self.stdout.write(f"repaired {len(repaired)} count(s)" if repaired else "counts were right: nothing to repair")
        right = services.rebuild_portfolio()
        self.stdout.write("portfolio slices were right" if right else "portfolio slices rebuilt from the loan rows")
