"""loan_service's Celery app: the outbox relay publishes events with it; its worker runs loans.tasks."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loan_service.settings")

app = Celery("loan_service")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
