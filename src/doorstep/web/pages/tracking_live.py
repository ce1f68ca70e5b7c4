"""The tracking page's live stream, ``/t/{token}/events``, shared by every page of one link.

Every page open on the same tracking link in this process shares one :class:`TrackingFeed`
(:mod:`doorstep.live.fanout`): one bus subscription (the order's channel and its route's), one
:class:`~doorstep.domain.tracking.view.TrackingView` read per batch of messages that can change
the page, one translated snapshot per language, one rounded position per GPS fix. A thousand
pages on one delivery therefore cost what one page costs, plus a thousand socket writes.

What a page is sent, in order:

* ``snapshot`` (SSE id: the latest event's sequence number) on connect and after every event
  that can change the page: an event of its own order, a ``route.*`` event, or one of
  :data:`ROUTE_EVENTS_THAT_MATTER` about another order of its route. Other orders' ETA updates
  and messages cost no read at all;
* ``position``: the driver's position, rounded, only while the view allows it
  (:attr:`TrackingView.driver_visible`), for fixes of the page's route;
* ``end`` once the delivery is over; the stream ends after ``live_stream_max_s`` in any case.

A page that falls behind gets the newest snapshot and the newest position, not the stale ones
(its :class:`~doorstep.live.fanout.Mailbox` keeps one of each).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from doorstep.domain.tracking.view import POSITION_DECIMALS, DriverMarker, TrackingView
from doorstep.live.bus import LiveBus
from doorstep.live.fanout import Feed, Mailbox, sse_chunk
from doorstep.web.i18n import choose_language
from doorstep.web.pages.tracking_view import present

__all__ = ["ROUTE_EVENTS_THAT_MATTER", "TrackingFeed", "concerns"]

# Events about other orders on the route that can change this page (the stops before it, the
# route itself); the rest (their ETAs, messages, edits) cannot, and are not re-read for.
ROUTE_EVENTS_THAT_MATTER = frozenset(
    {
        "delivery.delivered",
        "delivery.failed",
        "delivery.return_to_sender",
        "delivery.on_hold",
        "order.cancelled",
        "order.held",
        "order.redirected",
    }
)

END = sse_chunk("end", "{}")


def concerns(message: dict[str, Any], order_id: str) -> bool:
    """Whether an event message may change the page of ``order_id``."""
    kind = str(message.get("type", ""))
    return (
        message.get("order_id") == order_id
        or kind.startswith("route.")
        or kind in ROUTE_EVENTS_THAT_MATTER
    )


def _recorded_at(message: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(message.get("recorded_at")))
    except ValueError:
        return None


class TrackingFeed(Feed):
    """One tracking link's live state in this process (see the module's text). Each client's
    ``meta`` is its ``Accept-Language`` header, from which its language is chosen."""

    kind = "tracking"
    mailbox_limit = 3  # snapshot, position, end

    def __init__(self, bus: LiveBus, read: Callable[[], TrackingView | None]) -> None:
        super().__init__(bus)
        self.order_id = ""
        self._read = read
        self.view: TrackingView | None = None
        self._route_id: str | None = None
        # The newest position sent live: newer than the database's while the ingest's write
        # buffer holds it, so snapshots show it rather than move the marker back.
        self._marker: DriverMarker | None = None
        self._snapshots: dict[str, bytes] = {}
        self._languages: dict[str | None, str] = {}

    def channels(self) -> Iterable[str]:
        return ()  # the order is known after the first read

    async def load(self) -> bool:
        """Read which order the link opens, subscribe to it, then read its state: what is
        committed after the subscription is certain to arrive as a message."""
        first = await run_in_threadpool(self._read)
        if first is None:
            return False
        self.order_id = first.order_id
        self.subscribe_also(f"order:{first.order_id}")
        if first.route_id:
            self.subscribe_also(f"route:{first.route_id}")
        found = await self._refresh()
        if found and self.view is not None and not self.view.is_active:
            self.retired = True  # snapshot and end for whoever is here; the next one reads
        return found

    async def _refresh(self) -> bool:
        view = await run_in_threadpool(self._read)
        if view is None:
            return False
        if view.route_id != self._route_id:
            self._marker = None
        self.view = view
        self._snapshots.clear()
        self._languages.clear()
        if view.route_id and view.route_id != self._route_id:
            self.subscribe_also(f"route:{view.route_id}")
        self._route_id = view.route_id
        return True

    def _language(self, accept: str | None) -> str:
        lang = self._languages.get(accept)
        if lang is None:
            assert self.view is not None
            view = self.view
            lang = choose_language(view.recipient_locale, accept, view.merchant_locale)
            self._languages[accept] = lang
        return lang

    def _snapshot(self, lang: str) -> bytes:
        chunk = self._snapshots.get(lang)
        if chunk is None:
            assert self.view is not None
            view = self.view
            marker = self._marker
            if (
                view.driver_visible
                and marker is not None
                and (view.driver is None or marker.recorded_at > view.driver.recorded_at)
            ):
                view = replace(view, driver=marker)
            page = present(view, lang)
            chunk = sse_chunk("snapshot", json.dumps(page), str(page["seq"]))
            self._snapshots[lang] = chunk
        return chunk

    def welcome(self, mailbox: Mailbox, meta: Any) -> None:
        mailbox.put("snapshot", self._snapshot(self._language(meta)))
        assert self.view is not None
        if not self.view.is_active:
            mailbox.put("end", END)
            mailbox.finish()

    def _position(self, message: dict[str, Any]) -> bytes | None:
        """The fix as the recipient may see it (rounded), or ``None``."""
        view = self.view
        if view is None or not view.driver_visible or message.get("route_id") != view.route_id:
            return None
        at = _recorded_at(message)
        if at is not None and self._marker is not None and at < self._marker.recorded_at:
            return None  # a late fix: the marker never moves back
        heading = message.get("heading")
        lat = round(float(message["lat"]), POSITION_DECIMALS)
        lon = round(float(message["lon"]), POSITION_DECIMALS)
        rounded_heading = round(float(heading)) if isinstance(heading, int | float) else None
        if at is not None:
            self._marker = DriverMarker(lat, lon, rounded_heading, at)
            self._snapshots.clear()
        data = {"lat": lat, "lon": lon, "heading": rounded_heading}
        return sse_chunk("position", json.dumps(data))

    def handle(self, batch: list[dict[str, Any]]) -> None:
        for item in batch:
            if item.get("kind") == "position":
                chunk = self._position(item)
                if chunk is not None:
                    self.broadcast("position", chunk)
            elif concerns(item, self.order_id):
                self.request_refresh()

    async def refresh(self) -> None:
        if self.retired:
            return
        if not await self._refresh():  # the link expired meanwhile
            self.retired = True
            self.end_all(finish=False)
            return
        assert self.view is not None
        for mailbox, accept in self.clients.items():
            mailbox.discard("position")  # the snapshot carries the newest marker
            mailbox.put("snapshot", self._snapshot(self._language(accept)))
        if not self.view.is_active:
            self.retired = True
            self.broadcast("end", END)
            self.end_all(finish=True)
