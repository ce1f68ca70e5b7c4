"""The fan-out's pieces without a server: a client's mailbox keeps the newest message per key
and never grows past its limit; every client of one key shares one feed (one bus subscription,
one load), which is gone with its last client; a client that reads nothing holds up no one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from doorstep.live import InProcessBus
from doorstep.live.fanout import FanOut, Feed, Mailbox, sse_chunk


def test_mailbox_keeps_the_newest_chunk_per_key_in_the_order_of_the_latest_updates() -> None:
    """A reader that comes back late gets snapshot 2 then position 3: not the stale position
    1 nor snapshot 1, and nothing twice."""

    async def run() -> list[bytes] | None:
        box = Mailbox("test", limit=3)
        box.put("position", b"p1")
        box.put("snapshot", b"s1")
        box.put("snapshot", b"s2")
        box.put("position", b"p3")
        return await box.take()

    assert asyncio.run(run()) == [b"s2", b"p3"]


def test_mailbox_over_its_limit_is_closed_and_a_finished_one_ends_after_its_last_chunk() -> None:
    """More keys than the limit closes the stream (the browser reconnects afresh); finish()
    hands over what is pending, then ends."""

    async def run() -> tuple[list[bytes] | None, list[bytes] | None, list[bytes] | None]:
        full = Mailbox("test", limit=2)
        for key in ("a", "b", "c"):
            full.put(key, key.encode())
        ending = Mailbox("test", limit=3)
        ending.put("snapshot", b"last")
        ending.finish()
        ending.put("position", b"too late")
        return await full.take(), await ending.take(), await ending.take()

    overflowed, last, after = asyncio.run(run())
    assert overflowed is None
    assert last == [b"last"]
    assert after is None


class _CountingFeed(Feed):
    """Loads once (counted); broadcasts each message's ``n`` under the key ``n``."""

    kind = "test"
    mailbox_limit = 1

    def __init__(self, bus: InProcessBus, loads: list[int], found: bool = True) -> None:
        super().__init__(bus)
        self.loads = loads
        self.found = found

    def channels(self) -> Iterable[str]:
        return ["order:1"]

    async def load(self) -> bool:
        self.loads.append(1)
        return self.found

    def handle(self, batch: list[dict[str, Any]]) -> None:
        for item in batch:
            self.broadcast("n", sse_chunk("n", str(item["n"])))


def test_clients_of_one_key_share_one_feed_that_goes_with_the_last_of_them() -> None:
    """Three clients: one load, one bus subscription; each gets the message; a client that
    never reads only ever holds the newest one; when all have left, the subscription is gone."""
    bus = InProcessBus()
    loads: list[int] = []

    async def run() -> tuple[int, list[list[bytes] | None], list[bytes] | None, int, int]:
        fanout = FanOut()
        joined = [await fanout.join("k", lambda: _CountingFeed(bus, loads)) for _ in range(3)]
        assert all(j is not None for j in joined)
        feeds = {id(j[0]) for j in joined if j is not None}
        subscribers = bus.subscriber_count()
        for n in range(1, 4):
            await asyncio.to_thread(bus.publish, "order:1", {"n": n})
            # the two readers keep up; the third reads nothing until the end
            got = [await j[1].take() for j in joined[:2] if j is not None]
            assert got == [[sse_chunk("n", str(n))]] * 2
        slow = await joined[2][1].take() if joined[2] is not None else None
        for j in joined:
            if j is not None:
                fanout.leave("k", j[0], j[1])
        return len(feeds), got, slow, subscribers, bus.subscriber_count()

    feeds, _, slow, subscribers, after = asyncio.run(run())
    assert (feeds, len(loads), subscribers) == (1, 1, 1)
    assert slow == [sse_chunk("n", "3")]  # the newest only: 1 and 2 were replaced
    assert after == 0


def test_a_feed_with_nothing_to_watch_answers_none_and_keeps_nothing() -> None:
    """A feed whose load finds nothing (an unknown link) gives no mailbox and leaves no
    subscription behind; the next client tries afresh."""
    bus = InProcessBus()
    loads: list[int] = []

    async def run() -> tuple[object, object, int, int]:
        fanout = FanOut()
        first = await fanout.join("k", lambda: _CountingFeed(bus, loads, found=False))
        second = await fanout.join("k", lambda: _CountingFeed(bus, loads, found=False))
        return first, second, fanout.feed_count(), bus.subscriber_count()

    first, second, feeds, subscribers = asyncio.run(run())
    assert (first, second, feeds, subscribers) == (None, None, 0, 0)
    assert len(loads) == 2


class _SlowFeed(_CountingFeed):
    """Takes a while to load, like a database read."""

    async def load(self) -> bool:
        await asyncio.sleep(0.05)
        return await super().load()


def test_a_client_gone_while_its_feed_opens_leaves_nothing_and_others_still_join() -> None:
    """The first client's request is cancelled while the feed reads: a second client waiting
    for the same feed still joins it; had nobody waited, the feed would be closed."""
    bus = InProcessBus()
    loads: list[int] = []

    async def run() -> tuple[bool, int, int]:
        fanout = FanOut()
        first = asyncio.create_task(fanout.join("k", lambda: _SlowFeed(bus, loads)))
        await asyncio.sleep(0)
        second = asyncio.create_task(fanout.join("k", lambda: _SlowFeed(bus, loads)))
        await asyncio.sleep(0)
        first.cancel()
        joined = await second
        assert joined is not None
        fanout.leave("k", *joined)
        alone = asyncio.create_task(fanout.join("other", lambda: _SlowFeed(bus, loads)))
        await asyncio.sleep(0)
        alone.cancel()
        await asyncio.sleep(0.1)  # its feed finished opening with no one to join it
        return first.cancelled(), fanout.feed_count(), bus.subscriber_count()

    cancelled, feeds, subscribers = asyncio.run(run())
    assert cancelled
    assert (feeds, subscribers) == (0, 0)
    assert len(loads) == 2
