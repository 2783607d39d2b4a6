"""The Celery app of the notification worker: event consumers and delivery tasks."""

import os

from celery import Celery

from common.tracing import configure_tracing_in_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notification_service.settings")

app = Celery("notification_service")
app.config_from_object("django.conf:settings", namespace="CELERY")
configure_tracing_in_celery("notification_service")  # in the worker's pool processes and beat, when tracing is on
app.autodiscover_tasks()
