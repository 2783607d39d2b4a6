"""loan_service's Celery app: the outbox relay publishes events with it; its worker runs loans.tasks."""

import os

from celery import Celery

from common.tracing import configure_tracing_in_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loan_service.settings")

app = Celery("loan_service")
app.config_from_object("django.conf:settings", namespace="CELERY")
configure_tracing_in_celery("loan_service")  # in the worker's pool processes and beat, when tracing is on
app.autodiscover_tasks()
