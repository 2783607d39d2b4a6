"""The Celery app loan_service publishes events with (it runs no tasks of its own)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loan_service.settings")

app = Celery("loan_service")
app.config_from_object("django.conf:settings", namespace="CELERY")
