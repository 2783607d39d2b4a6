"""Test support for the admin health panel: read it out of a page, make an outbox backlog. Only tests import this."""

from __future__ import annotations

import socket
import uuid
from datetime import timedelta
from html.parser import HTMLParser

from django.utils import timezone


class _PanelParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.checks: dict[str, dict] = {}
        self.found = False
        self._depth = 0  # open elements inside section#service-health
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if not self._depth:
            if tag == "section" and attributes.get("id") == "service-health":
                self.found, self._depth = True, 1
            return
        self._depth += 1
        if tag == "li" and "data-check" in attributes:
            self._current = {"state": attributes.get("data-state", ""), "text": [], "link": ""}
            self.checks[attributes["data-check"]] = self._current
        elif tag == "a" and self._current is not None:
            self._current["link"] = attributes.get("href", "")

    def handle_endtag(self, tag):
        if not self._depth:
            return
        self._depth -= 1
        if tag == "li" and self._current is not None:
            self._current["text"] = " ".join(" ".join(self._current["text"]).split())
            self._current = None

    def handle_data(self, data):
        if self._current is not None:
            self._current["text"].append(data)


def health_panel(html: str | bytes) -> dict[str, dict] | None:
    """The panel in a page as {check name: {"state", "text", "link"}}, in page order; None if the page has none."""
    parser = _PanelParser()
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    return parser.checks if parser.found else None


def outbox_backlog(count: int, *, age: timedelta, sent: bool = False) -> list:
    """`count` outbox rows created `age` ago, unsent (or sent): a relay's backlog, without the relay."""
    from common.outbox.models import OutboxMessage  # a model: only where common.outbox is installed

    created_at = timezone.now() - age
    rows = OutboxMessage.objects.bulk_create(
        OutboxMessage(event_id=uuid.uuid4(), name="test.event", message={}, sent_at=created_at if sent else None)
        for _ in range(count)
    )
    # created_at is auto_now_add: set afterwards.
    OutboxMessage.objects.filter(pk__in=[row.pk for row in rows]).update(created_at=created_at)
    return rows


def closed_broker_url() -> str:
    """A Redis broker URL on a local port nothing listens on: a broker that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"
