"""Fan-out that costs per event, not per page.

A thousand tracking pages open on the same delivery want the same thing after each bus message:
one database read, one encoded SSE message, and that message written to a thousand sockets.
This module is the part in between, in each server process:

* a :class:`Feed` is what every client watching the same thing (one tracking link, one
  merchant's dispatch map) shares: **one** bus subscription, one task that reads it, one
  computation per message (a re-read of the database when the message can change the page,
  none for a position), and the SSE bytes encoded once;
* a :class:`Mailbox` is each client's side: the newest chunk **per key** (``snapshot``,
  ``position``, ``stop:<order>``, ...), in the order of their latest update. A client that falls
  behind is not sent every stale message when it catches up, only the newest state; the mailbox
  never holds more than its number of keys, and one with more keys than its limit is closed (the
  browser reconnects and starts from a fresh state). A slow client's socket therefore never
  holds up the feed, nor the other clients;
* :class:`FanOut` is the registry: it makes a feed on the first client of a key, and closes it
  (and its bus subscription) when the last one leaves.

Everything here runs in the server's event loop; database work is the feeds' business
(``run_in_threadpool``), and a feed's computation runs once per batch of bus messages.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from prometheus_client import Counter, Gauge
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message, Send

from doorstep.live.bus import LiveBus, Subscription

log = logging.getLogger(__name__)

__all__ = ["FanOut", "Feed", "LiveResponse", "Mailbox", "fanout_of", "sse_chunk"]

FEEDS = Gauge("doorstep_live_feeds", "Shared live feeds open in this process", ["kind"])
CLIENTS = Gauge("doorstep_live_clients", "Live stream clients connected to this process", ["kind"])
SUPERSEDED = Counter(
    "doorstep_live_superseded_total",
    "Live messages replaced by a newer one before a slow client read them",
    ["kind"],
)
OVERFLOWED = Counter(
    "doorstep_live_overflowed_total", "Live clients closed for falling too far behind", ["kind"]
)


class Mailbox:
    """What one client still has to receive: the newest chunk per key, oldest update first.

    :meth:`put` replaces a pending chunk of the same key (and moves it last, so the order of
    the latest updates is kept); :meth:`take` hands over everything pending. After
    :meth:`finish` the client gets what is pending, then the end of its stream; after
    :meth:`close` only the end."""

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        self._pending: dict[str, bytes] = {}
        self._ready = asyncio.Event()
        self.finishing = False
        self.closed = False

    def put(self, key: str, chunk: bytes) -> None:
        if self.closed or self.finishing:
            return
        if self._pending.pop(key, None) is not None:
            SUPERSEDED.labels(self.kind).inc()
        self._pending[key] = chunk
        if len(self._pending) > self.limit:
            OVERFLOWED.labels(self.kind).inc()
            self.close()
            return
        self._ready.set()

    def discard(self, key: str) -> None:
        """Forget a pending chunk that is no longer true."""
        self._pending.pop(key, None)

    def finish(self) -> None:
        """End the stream once what is pending has been taken."""
        self.finishing = True
        self._ready.set()

    def close(self) -> None:
        """End the stream now, dropping what is pending."""
        self.closed = True
        self._pending.clear()
        self._ready.set()

    async def stream(self, max_s: float) -> AsyncIterator[bytes]:
        """The chunks as they come (pending ones joined in one write), for ``max_s`` seconds
        at most or until the stream is over."""
        deadline = asyncio.get_running_loop().call_later(max_s, self.finish)
        try:
            while (chunks := await self.take()) is not None:
                yield b"".join(chunks)
        finally:
            deadline.cancel()

    async def take(self) -> list[bytes] | None:
        """The pending chunks in order (waiting for one), or ``None`` once the stream is over.

        No timeout here: ``asyncio.wait_for`` makes a task per call, which at a thousand
        clients per message was most of the fan-out's cost; :meth:`stream`'s one timer per
        client ends the stream instead."""
        while not (self._pending or self.closed or self.finishing):
            self._ready.clear()
            await self._ready.wait()
        if self.closed or not self._pending:
            return None
        chunks = list(self._pending.values())
        self._pending.clear()
        return chunks


class Feed(ABC):
    """The shared side of a live stream (see the module's text). Subclasses implement
    :meth:`load` (the first state, once subscribed; ``False`` when there is nothing to watch),
    :meth:`handle` (a batch of bus messages, at once) and :meth:`refresh` (database reads, in a
    task of their own), and send with :meth:`broadcast`."""

    kind = "feed"
    mailbox_limit = 16

    def __init__(self, bus: LiveBus) -> None:
        self.bus = bus
        self.clients: dict[Mailbox, Any] = {}
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._dirty = False
        self.opening: asyncio.Future[bool] | None = None  # the registry's: open() running
        self.joining = 0  # clients waiting for it to open
        # Set when the feed has nothing more to say (the link expired, the delivery is over):
        # clients arriving after that get a new feed, which reads the state afresh.
        self.retired = False

    # --- what subclasses write -------------------------------------------------------------

    @abstractmethod
    def channels(self) -> Iterable[str]:
        """The bus channels to subscribe to before the first :meth:`load`."""
        ...

    @abstractmethod
    async def load(self) -> bool:
        """Read the first state; ``False`` if there is nothing to watch (then the feed ends)."""
        ...

    @abstractmethod
    def handle(self, batch: list[dict[str, Any]]) -> None:
        """React at once to a batch of bus messages (everything that arrived since the last):
        send what needs no database, :meth:`request_refresh` for what does."""
        ...

    async def refresh(self) -> None:
        """Read what changed and send it (run by :meth:`request_refresh`)."""
        return None

    def tick_s(self) -> float | None:
        """How often :meth:`tick` runs (``None``: never)."""
        return None

    def tick(self) -> None:
        """Periodic work, every :meth:`tick_s` seconds."""
        return None

    def welcome(self, mailbox: Mailbox, meta: Any) -> None:
        """Put what a new client must see first (the current state) in its mailbox."""
        return None

    # --- for subclasses --------------------------------------------------------------------

    def subscribe_also(self, channel: str) -> None:
        if self._sub is not None:
            self._sub.add(channel)

    def request_refresh(self) -> None:
        """Run :meth:`refresh` in a task of its own, so that positions keep flowing while it
        reads the database; requests made while it runs are served by one more run after it
        (a burst of events costs two reads at most, not one each)."""
        self._dirty = True
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self.refresh()
            except Exception:
                log.exception("live: %s feed could not refresh", self.kind)

    def broadcast(self, key: str, chunk: bytes) -> None:
        for mailbox in self.clients:
            mailbox.put(key, chunk)

    def end_all(self, *, finish: bool) -> None:
        """End every client's stream (after what is pending with ``finish``)."""
        for mailbox in list(self.clients):
            if finish:
                mailbox.finish()
            else:
                mailbox.close()

    # --- life cycle (the registry's) -------------------------------------------------------

    async def open(self) -> bool:
        self._sub = self.bus.subscribe(self.channels())
        try:
            found = await self.load()
        except Exception:
            log.exception("live: %s feed could not load", self.kind)
            found = False
        if found:
            FEEDS.labels(self.kind).inc()
            self._task = asyncio.create_task(self._run(), name=f"doorstep-live-{self.kind}")
        else:
            self._sub.close()
        return found

    async def _run(self) -> None:
        assert self._sub is not None
        loop = asyncio.get_running_loop()
        every = self.tick_s()
        next_tick = loop.time() + every if every is not None else None
        while True:
            wait = None if next_tick is None else max(0.0, next_tick - loop.time())
            message = await self._sub.get(timeout=wait)
            try:
                if message is not None:
                    self.handle([message, *self._sub.drain()])
                if next_tick is not None and loop.time() >= next_tick:
                    self.tick()
                    next_tick = loop.time() + (self.tick_s() or 0.0)
            except Exception:  # one bad message must not end everyone's stream
                log.exception("live: %s feed failed on a message", self.kind)

    def join(self, meta: Any) -> Mailbox:
        mailbox = Mailbox(self.kind, self.mailbox_limit)
        self.clients[mailbox] = meta
        CLIENTS.labels(self.kind).inc()
        self.welcome(mailbox, meta)
        return mailbox

    def leave(self, mailbox: Mailbox) -> bool:
        """Forget ``mailbox``; ``True`` when it was the last client."""
        if self.clients.pop(mailbox, None) is not None:
            CLIENTS.labels(self.kind).dec()
        mailbox.close()
        return not self.clients

    def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
            FEEDS.labels(self.kind).dec()
        if self._sub is not None:
            self._sub.close()


class FanOut:
    """The feeds of one process, by key and event loop (tests run several loops)."""

    def __init__(self) -> None:
        self._feeds: dict[tuple[asyncio.AbstractEventLoop, str], Feed] = {}

    def feed_count(self) -> int:
        return len(self._feeds)

    async def join(
        self, key: str, make: Callable[[], Feed], meta: Any = None
    ) -> tuple[Feed, Mailbox] | None:
        """A mailbox on the feed of ``key`` (made with ``make`` for its first client), or
        ``None`` when that feed has nothing to watch.

        The feed opens in a task of its own, so a client that goes away meanwhile (its
        request cancelled) cancels nothing the others wait for; a feed that opens with no
        client left to join it is closed."""
        slot = (asyncio.get_running_loop(), key)
        feed = self._feeds.get(slot)
        if feed is None or feed.retired:
            feed = make()
            self._feeds[slot] = feed
            feed.opening = asyncio.ensure_future(feed.open())
        assert feed.opening is not None
        feed.joining += 1
        try:
            found = await asyncio.shield(feed.opening)
        except asyncio.CancelledError:
            opened = feed
            feed.opening.add_done_callback(lambda _: self._close_if_idle(slot, opened))
            raise
        finally:
            feed.joining -= 1
        if not found:
            if self._feeds.get(slot) is feed:
                del self._feeds[slot]
            return None
        return feed, feed.join(meta)

    def _close_if_idle(self, slot: tuple[asyncio.AbstractEventLoop, str], feed: Feed) -> None:
        if feed.clients or feed.joining:
            return
        if self._feeds.get(slot) is feed:
            del self._feeds[slot]
        feed.stop()

    def leave(self, key: str, feed: Feed, mailbox: Mailbox) -> None:
        if feed.leave(mailbox):
            slot = (asyncio.get_running_loop(), key)
            if self._feeds.get(slot) is feed:
                del self._feeds[slot]
            feed.stop()


class LiveResponse(EventSourceResponse):
    """sse-starlette's response with a cheaper per-send timeout.

    Its own wraps every send in an anyio cancel scope, which (with the async-library lookup it
    implies) cost about a quarter of the server's CPU per message at a thousand clients;
    ``asyncio.timeout`` is one timer. A client that takes nothing for ``send_timeout`` seconds
    (a dead phone whose connection never closed) is disconnected, as before."""

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        try:
            if self.send_timeout is None:
                await send(message)
            else:
                async with asyncio.timeout(self.send_timeout):
                    await send(message)
        except TimeoutError as exc:
            self._send_interrupted = True
            raise SendTimeoutError() from exc
        except BaseException:
            self._send_interrupted = True
            raise


def sse_chunk(event: str, data: str, ident: str | None = None) -> bytes:
    """One Server-Sent Event, encoded once for every client that gets it."""
    return ServerSentEvent(data=data, event=event, id=ident).encode()


def fanout_of(state: Any) -> FanOut:
    """The app's :class:`FanOut` (made on first use; ``state`` is ``app.state``)."""
    registry = getattr(state, "live_fanout", None)
    if registry is None:
        registry = FanOut()
        state.live_fanout = registry
    assert isinstance(registry, FanOut)
    return registry
