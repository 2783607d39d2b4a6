"""The correlation id of the work in progress: one per request or task, carried everywhere."""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Correlation-ID"
META_KEY = "HTTP_X_CORRELATION_ID"

MAX_LENGTH = 128  # the longest client id kept; stores of correlation ids size their columns by it
# A client's id is kept only if it is short and plain, so it cannot inject into logs. Anchored with \Z,
# not $, which would also match before a trailing newline.
_ACCEPTABLE = re.compile(rf"\A[A-Za-z0-9._:\-]{{1,{MAX_LENGTH}}}\Z")

_current: ContextVar[str] = ContextVar("correlation_id", default="")


def new_correlation_id() -> str:
    """A fresh random id."""
    return uuid.uuid4().hex


def accept_or_new(candidate: str | None) -> str:
    """The client's id when it is acceptable, else a new one."""
    if candidate and _ACCEPTABLE.match(candidate):
        return candidate
    return new_correlation_id()


def get_correlation_id() -> str:
    """The id of the current request or task ('' outside one)."""
    return _current.get()


def set_correlation_id(value: str):
    """Make `value` current; returns a token for `reset_correlation_id`."""
    return _current.set(value)


def reset_correlation_id(token) -> None:
    """Restore the id that was current before `set_correlation_id`."""
    _current.reset(token)


@contextmanager
def correlation_scope(value: str):
    """Make `value` (or a new id when empty) current inside the block, e.g. for one Celery task."""
    token = _current.set(value or new_correlation_id())
    try:
        yield get_correlation_id()
    finally:
        _current.reset(token)
