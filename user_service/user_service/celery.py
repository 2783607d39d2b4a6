"""The Celery app user_service publishes events with (it runs no tasks of its own)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "user_service.settings")

app = Celery("user_service")
app.config_from_object("django.conf:settings", namespace="CELERY")
