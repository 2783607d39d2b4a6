"""`manage.py relay_outbox`: send unsent outbox events to the broker, once or in a loop."""

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils.module_loading import import_string

from common.outbox.publisher import relay_pending
from common.tracing import configure_tracing


class Command(BaseCommand):
    help = "Relay unsent outbox events to the Celery broker."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")
        parser.add_argument(
            "--interval", type=float, default=settings.OUTBOX_RELAY_INTERVAL, help="Seconds between passes when idle."
        )
        parser.add_argument("--batch-size", type=int, default=100)

    def handle(self, *args, once: bool, interval: float, batch_size: int, **options):
        configure_tracing(settings.SERVICE_NAME, role="relay")  # its publishes, when tracing is on
        app = import_string(settings.CELERY_APP)
        if once:
            self.stdout.write(f"sent {relay_pending(app, batch_size=batch_size)}")
            return
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        while not stopping:
            close_old_connections()
            try:
                sent = relay_pending(app, batch_size=batch_size)
            except Exception as exc:  # noqa: BLE001 - a database blip must not kill the relay
                self.stderr.write(f"relay pass failed: {type(exc).__name__}: {exc}")
                sent = 0
            if sent < batch_size:
                time.sleep(interval)
