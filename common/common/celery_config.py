"""Celery settings shared by producers and the worker: the broker from the environment.

With CELERY_BROKER_URL unset the broker is kombu's filesystem transport in
`var/broker`: no server to run, yet a real worker process consumes from it,
which is what the embedded default needs.
"""

from __future__ import annotations

from pathlib import Path

from common.env import env_int, env_str

AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


def broker_settings(var: Path) -> dict:
    """CELERY_BROKER_URL and its transport options, as Django settings."""
    url = env_str("CELERY_BROKER_URL")
    if url:
        options: dict = {}
        if url.startswith(("redis://", "rediss://")):
            # Longer than the longest retry countdown, or Redis redelivers a task still waiting.
            options["visibility_timeout"] = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
        if url.startswith(AMQP_SCHEMES):
            # Wait for the broker's confirm on every publish: a message it drops raises instead of
            # being taken as sent (the outbox relay then keeps the row and sends it again).
            options["confirm_publish"] = True
        return {"CELERY_BROKER_URL": url, "CELERY_BROKER_TRANSPORT_OPTIONS": options}
    folder = var / "broker"
    (folder / "queue").mkdir(parents=True, exist_ok=True)
    (folder / "processed").mkdir(parents=True, exist_ok=True)
    return {
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_BROKER_TRANSPORT_OPTIONS": {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),  # exchange tables; default is the cwd
            "store_processed": False,
        },
    }


# Applied to every service's Celery app (namespace "CELERY" in Django settings).
COMMON_CELERY_SETTINGS = {
    "CELERY_TASK_SERIALIZER": "json",
    "CELERY_ACCEPT_CONTENT": ["json"],
    "CELERY_TASK_IGNORE_RESULT": True,
    "CELERY_BROKER_CONNECTION_TIMEOUT": 2,
    "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
    "CELERY_TASK_ACKS_LATE": True,
    "CELERY_TASK_REJECT_ON_WORKER_LOST": True,
    "CELERY_WORKER_PREFETCH_MULTIPLIER": 1,
    # Keep Django's JSON logging (with correlation ids) in workers instead of Celery's plain text.
    "CELERY_WORKER_HIJACK_ROOT_LOGGER": False,
}
