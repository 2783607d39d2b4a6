"""A real SMTP server on a free port (aiosmtpd) that keeps every message it receives."""

from __future__ import annotations

import asyncio
import socket
import threading
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds to wait before accepting a message (a slow mail server)
        self.data_started = 0

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.data_started += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"


class CapturingSMTP:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._handler = _Keep()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    @property
    def delay(self) -> float:
        return self._handler.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._handler.delay = seconds

    @property
    def sessions_started(self) -> int:
        """How many messages clients have started to hand over (DATA received)."""
        return self._handler.data_started

    def messages_to(self, address: str) -> list[Message]:
        with self._handler.lock:
            return [m for m in self._handler.messages if address in (m.get("To") or "")]
