"""Live message buses: publish small JSON messages on named channels, subscribe from asyncio.

Channels are ``order:{id}``, ``route:{id}`` and ``merchant:{id}``. :meth:`LiveBus.publish` may
be called from any thread (request handlers run in a thread pool) and never blocks nor raises:
a message that cannot be delivered is dropped, logged and counted in ``/metrics``.

* :class:`InProcessBus` fans out inside one process through bounded asyncio queues.
* :class:`RedisBus` sends every message through Redis pub/sub (``redis`` asyncio API) so that
  every server process sees what any process wrote. Each process keeps one Redis connection
  for publishing and one pattern subscription, and fans out to its own subscribers through an
  :class:`InProcessBus`; a thousand tracking pages cost one Redis subscription, not a thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import Counter

log = logging.getLogger(__name__)
# A lost subscription is retried after 1 s, then 2, 4 ... up to 30 s while Redis stays away;
# only the first failure of a streak is logged as a warning with its traceback.
RECONNECT_FIRST_S = 1.0
RECONNECT_MAX_S = 30.0

PUBLISHED = Counter("doorstep_live_published_total", "Live messages published", ["bus"])
DROPPED = Counter(
    "doorstep_live_dropped_total", "Live messages dropped (slow subscriber or bus error)", ["why"]
)
ERRORS = Counter("doorstep_live_errors_total", "Errors while publishing live messages")

QUEUE_SIZE = 256


class Subscription:
    """Messages of some channels, as an async iterator; registered from the moment it is made
    (so nothing published after it was created is missed). Close it (or use ``async with``)."""

    def __init__(self, bus: InProcessBus, channels: Iterable[str]) -> None:
        self.channels = frozenset(channels)
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._bus = bus
        self.closed = False
        bus._add(self)

    def add(self, channel: str) -> None:
        """Also receive ``channel`` from now on."""
        if channel not in self.channels and not self.closed:
            self.channels = self.channels | {channel}
            self._bus._add(self)

    def offer(self, message: dict[str, Any]) -> None:
        """Called in the subscriber's loop: queue ``message``, dropping it if the reader lags."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            DROPPED.labels("slow_subscriber").inc()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self.closed:
            raise StopAsyncIteration
        return await self.queue.get()

    async def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message, or ``None`` after ``timeout`` seconds without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    def drain(self) -> list[dict[str, Any]]:
        """The messages already waiting, without waiting for more."""
        out: list[dict[str, Any]] = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._remove(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.close()


def _offer_all(subs: list[Subscription], message: dict[str, Any]) -> None:
    for sub in subs:
        sub.offer(message)


class LiveBus(Protocol):
    def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` to the subscribers of ``channel``; never blocks, never raises."""
        ...

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        """A subscription to ``channels`` (call from a running event loop)."""
        ...

    async def start(self) -> None:
        """Be ready to deliver (connect and subscribe where needed)."""
        ...

    def close(self) -> None: ...


class InProcessBus:
    """Fan-out inside this process: each subscriber has a bounded queue in its own loop."""

    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_channel: dict[str, set[Subscription]] = {}

    def _add(self, sub: Subscription) -> None:
        with self._lock:
            for channel in sub.channels:
                self._by_channel.setdefault(channel, set()).add(sub)

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            for channel in sub.channels:
                subs = self._by_channel.get(channel)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._by_channel[channel]

    def subscriber_count(self) -> int:
        with self._lock:
            return len({s for subs in self._by_channel.values() for s in subs})

    def deliver(self, channel: str, message: dict[str, Any]) -> None:
        """Hand ``message`` to this process's subscribers of ``channel``."""
        with self._lock:
            subs = list(self._by_channel.get(channel, ()))
        if not subs:
            return
        # One wake-up per event loop (usually one), not one per subscriber.
        by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
        for sub in subs:
            by_loop.setdefault(sub.loop, []).append(sub)
        item = {"channel": channel, **message}
        for loop, group in by_loop.items():
            try:
                loop.call_soon_threadsafe(_offer_all, group, item)
            except RuntimeError:  # the subscribers' loop is closed
                DROPPED.labels("closed_loop").inc()

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        try:
            self.deliver(channel, message)
            PUBLISHED.labels(self.name).inc()
        except Exception:
            ERRORS.inc()
            log.exception("live publish on %s failed", channel)

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        return Subscription(self, channels)

    async def start(self) -> None:
        return None

    def close(self) -> None:
        return None


class RedisBus:
    """Redis pub/sub between processes, fanned out locally by an :class:`InProcessBus`.

    A daemon thread runs an event loop of its own with two tasks: the publisher, which drains a
    bounded queue into ``PUBLISH``, and the reader, which holds ``PSUBSCRIBE {prefix}*`` and
    delivers what arrives (this process's messages too) to local subscribers. Both reconnect
    after errors. The thread starts on first use, so forked server processes each get theirs.
    """

    name = "redis"

    def __init__(self, url: str, prefix: str = "doorstep:") -> None:
        self.url = url
        self.prefix = prefix
        self.local = InProcessBus()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, str]] | None = None
        self._subscribed = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- the background thread -----------------------------------------------------------

    def _ensure_thread(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(loop, ready), name="doorstep-live-redis", daemon=True
                )
                self._thread.start()
                ready.wait(5)
                self._loop = loop
            return self._loop

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        self._queue = asyncio.Queue(10_000)
        loop.create_task(self._publisher())
        loop.create_task(self._reader())
        ready.set()
        loop.run_forever()

    async def _publisher(self) -> None:
        import redis.asyncio as aioredis

        assert self._queue is not None
        client = aioredis.Redis.from_url(self.url)
        try:
            while not self._stopping:
                channel, payload = await self._queue.get()
                try:
                    await client.publish(self.prefix + channel, payload)
                    PUBLISHED.labels(self.name).inc()
                except Exception:
                    ERRORS.inc()
                    DROPPED.labels("redis_error").inc()
                    log.warning("live: could not publish to Redis", exc_info=True)
                    await asyncio.sleep(0.5)
        finally:
            await client.aclose()

    async def _reader(self) -> None:
        import redis.asyncio as aioredis

        pause = RECONNECT_FIRST_S
        while not self._stopping:
            client = aioredis.Redis.from_url(self.url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self.prefix + "*")
                self._subscribed.set()
                if pause > RECONNECT_FIRST_S:
                    log.warning("live: Redis subscription restored")
                pause = RECONNECT_FIRST_S
                while not self._stopping:
                    item = await pubsub.get_message(timeout=5.0)
                    if item is None or item.get("type") != "pmessage":
                        continue
                    channel = item["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    message = json.loads(item["data"])
                    self.local.deliver(channel.removeprefix(self.prefix), message)
            except Exception as exc:
                self._subscribed.clear()
                ERRORS.inc()
                if pause == RECONNECT_FIRST_S:  # the first failure of a streak, with its cause
                    log.warning("live: Redis subscription lost; reconnecting", exc_info=True)
                else:
                    log.info("live: Redis still unreachable (%s); next try in %.0f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_MAX_S)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                await client.aclose()

    def _enqueue(self, channel: str, payload: str) -> None:
        assert self._queue is not None
        try:
            self._queue.put_nowait((channel, payload))
        except asyncio.QueueFull:
            DROPPED.labels("redis_backlog").inc()

    # --- the interface -------------------------------------------------------------------

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        try:
            payload = json.dumps(message, separators=(",", ":"), default=str)
            loop = self._ensure_thread()
            loop.call_soon_threadsafe(self._enqueue, channel, payload)
        except Exception:
            ERRORS.inc()
            log.exception("live publish on %s failed", channel)

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        self._ensure_thread()
        return Subscription(self.local, channels)

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the Redis pattern subscription is in place (or ``timeout`` passes)."""
        self._ensure_thread()
        return self._subscribed.wait(timeout)

    async def start(self) -> None:
        if not await asyncio.to_thread(self.wait_subscribed, 10.0):
            log.warning("live: Redis at %s not subscribed yet; live updates may lag", self.url)

    async def _shutdown(self) -> None:
        # Let the publisher send what is queued (a short-lived CLI process exits right after).
        deadline = asyncio.get_running_loop().time() + 2.0
        while self._queue is not None and not self._queue.empty():
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.get_running_loop().stop()

    def close(self) -> None:
        """Send what is queued, then stop the background thread and its connections."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        thread.join(5)
        self._stopping = True
        if not thread.is_alive():
            loop.close()
        self._loop = None


def make_bus(redis_url: str | None) -> InProcessBus | RedisBus:
    """Redis pub/sub when a URL is configured, else the in-process bus."""
    return RedisBus(redis_url) if redis_url else InProcessBus()
