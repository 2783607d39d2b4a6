"""The relay as a Celery task, for deployments that run it from beat instead of `relay_outbox`."""

from celery import current_app, shared_task

from common.outbox.publisher import relay_pending


@shared_task(name="outbox.relay", ignore_result=True)
def relay_outbox(batch_size: int = 100) -> int:
    """One relay pass with the current Celery app."""
    return relay_pending(current_app, batch_size=batch_size)
