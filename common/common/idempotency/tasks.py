"""The purge as a Celery task, for the beat of a service that runs one (loan_service, notification_service)."""

from celery import shared_task

from common.idempotency.records import purge_expired

PURGE_TASK = "idempotency.purge_expired"


@shared_task(name=PURGE_TASK, ignore_result=True)
def purge_expired_keys() -> int:
    """Delete the expired Idempotency-Key records of this service's database."""
    return purge_expired()
