"""`manage.py purge_idempotency_keys`: delete the Idempotency-Keys past IDEMPOTENCY_KEY_TTL_SECONDS."""

from django.core.management.base import BaseCommand

from common.idempotency.records import purge_expired


class Command(BaseCommand):
    help = "Delete expired Idempotency-Key records (older than IDEMPOTENCY_KEY_TTL_SECONDS), in one DELETE."

    def handle(self, *args, **options):
        self.stdout.write(f"deleted {purge_expired()}")
