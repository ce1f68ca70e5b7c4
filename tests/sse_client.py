"""A small Server-Sent Events reader for tests: parse ``event``/``id``/``data`` blocks from an
httpx stream, stopping at a bounded number of messages or when the server goes quiet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class SseMessage:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


def messages(response: httpx.Response) -> Iterator[SseMessage]:
    """The messages of a streaming response, as they arrive (comments/pings skipped)."""
    event, data, ident = "message", [], None
    for line in response.iter_lines():
        if line == "":
            if data:
                yield SseMessage(event, "\n".join(data), ident)
            event, data, ident = "message", [], None
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                ident = value


def next_of(stream: Iterator[SseMessage], event: str, limit: int = 20) -> SseMessage:
    """The next message named ``event`` (skipping at most ``limit`` others)."""
    for _ in range(limit):
        message = next(stream)
        if message.event == event:
            return message
    raise AssertionError(f"no {event!r} message in {limit}")
