"""The Celery app the outbox relay of the test project sends with (broker from settings, set per test)."""

from celery import Celery

app = Celery("common_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
