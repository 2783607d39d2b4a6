"""The Celery app user_service publishes events with (it runs no tasks of its own)."""

import os

from celery import Celery

from common.tracing import configure_tracing_in_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "user_service.settings")

app = Celery("user_service")
app.config_from_object("django.conf:settings", namespace="CELERY")
configure_tracing_in_celery("user_service")  # in the worker's pool processes and beat, when tracing is on
