"""The dispatch map, live: ``GET /console/dispatch/events`` streams (SSE, session-authenticated)
what happens in the signed-in user's merchant, for ``static/dispatch.js`` to apply:

* ``vehicle``: a route's new position (route id, driver id, lat, lon, heading);
* ``stop``: an order's new state on its stop (status, ``late``/``at_risk``/"", expected time),
  whose SSE id is the event's sequence number; also, once a minute, stops whose window has
  just ended undelivered (late by the clock, with no event to say so). A browser
  reconnecting with ``Last-Event-ID`` first gets the state of every order that changed
  meanwhile (up to 500).

Every dispatcher of one merchant in a process shares one feed (:class:`DispatchFeed`): one
read per batch of events, whatever the number of screens. Streams end after
``live_stream_max_s``; the browser reconnects by itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from doorstep.domain.accounts.users import Action
from doorstep.domain.notifications.outbox import MESSAGE_EVENT_PREFIX
from doorstep.domain.tracking.watch import (
    StopWatch,
    became_late,
    orders_changed_since,
    watch_stops,
)
from doorstep.live.fanout import Feed, LiveResponse, fanout_of, sse_chunk
from doorstep.runtime import Runtime
from doorstep.web.pages.calls import console_user_of

__all__ = ["router", "stop_payload"]

router = APIRouter(prefix="/console/dispatch", include_in_schema=False)

# How often the stream looks for stops that became late by the clock alone.
LATE_CHECK_S = 60.0
ATTENTION_LABELS = {"late": "Late", "at_risk": "At risk"}
# A stream whose socket takes no data for this long is closed (a dead or stuck browser).
SEND_TIMEOUT_S = 30.0
READY = sse_chunk("ready", "{}")


def stop_payload(watch: StopWatch, timezone: str) -> dict[str, Any]:
    """One stop's live state as the map and panel show it."""
    tz = ZoneInfo(timezone)
    return {
        "order_id": watch.order_id,
        "reference": watch.reference,
        "status": watch.status,
        "status_text": watch.status.replace("_", " "),
        "attention": watch.attention,
        "attention_text": ATTENTION_LABELS.get(watch.attention, ""),
        "expected": watch.expected.astimezone(tz).strftime("%H:%M") if watch.expected else "",
        "window_end": watch.window_end.astimezone(tz).strftime("%H:%M") if watch.window_end else "",
    }


def _vehicle(message: dict[str, Any]) -> bytes:
    data = {
        "route_id": message.get("route_id"),
        "driver_id": message.get("driver_id"),
        "lat": message.get("lat"),
        "lon": message.get("lon"),
        "heading": message.get("heading"),
        "recorded_at": message.get("recorded_at"),
    }
    return sse_chunk("vehicle", json.dumps(data))


def _changes_map(message: dict[str, Any]) -> bool:
    """An event about an order, other than a message sent about it (which changes nothing on
    the map)."""
    return bool(message.get("order_id")) and not str(message.get("type", "")).startswith(
        MESSAGE_EVENT_PREFIX
    )


class DispatchFeed(Feed):
    """One merchant's map, live, shared by every dispatcher of it in this process: one read of
    the changed stops per batch of events, one encoded message per vehicle fix, one check a
    minute for stops late by the clock alone. Each dispatcher's mailbox keeps the newest
    message per vehicle and per stop."""

    kind = "dispatch"
    mailbox_limit = 5000  # vehicles and stops waiting for one slow dispatcher

    def __init__(self, runtime: Runtime, merchant_id: str, timezone: str) -> None:
        super().__init__(runtime.live)
        self.runtime = runtime
        self.merchant_id = merchant_id
        self.timezone = timezone
        self._checked = runtime.clock.now()
        self._changed: dict[str, dict[str, Any]] = {}  # order id -> its newest event message
        self._late_due = False

    def tick_s(self) -> float:
        return LATE_CHECK_S

    def channels(self) -> Iterable[str]:
        return [f"merchant:{self.merchant_id}"]

    async def load(self) -> bool:
        return True  # the page itself shows the state; the stream sends changes

    def _states(self, order_ids: list[str]) -> list[dict[str, Any]]:
        runtime = self.runtime
        with runtime.read_sessions() as session, session.begin():
            watched = watch_stops(session, self.merchant_id, order_ids, runtime.clock.now())
        return [stop_payload(w, self.timezone) for w in watched]

    def _late_since(self, since: datetime) -> tuple[datetime, list[dict[str, Any]]]:
        now = self.runtime.clock.now()
        with self.runtime.read_sessions() as session, session.begin():
            watched = became_late(session, self.merchant_id, since, now)
        return now, [stop_payload(w, self.timezone) for w in watched]

    def handle(self, batch: list[dict[str, Any]]) -> None:
        for item in batch:
            if item.get("kind") == "position":
                self.broadcast(f"vehicle:{item.get('route_id')}", _vehicle(item))
            elif _changes_map(item):
                order_id = str(item["order_id"])
                self._changed.pop(order_id, None)  # keep them in the order of their newest event
                self._changed[order_id] = item
                self.request_refresh()

    def tick(self) -> None:
        self._late_due = True
        self.request_refresh()

    async def refresh(self) -> None:
        changed, self._changed = self._changed, {}
        if changed:
            payloads = await run_in_threadpool(self._states, list(changed))
            by_order = {p["order_id"]: p for p in payloads}
            for order_id, message in changed.items():
                payload = by_order.get(order_id)
                if payload is None:
                    continue
                payload["route_id"] = message.get("route_id")
                chunk = sse_chunk("stop", json.dumps(payload), str(message.get("seq", "")))
                self.broadcast(f"stop:{order_id}", chunk)
        if self._late_due:
            self._late_due = False
            self._checked, late = await run_in_threadpool(self._late_since, self._checked)
            for payload in late:
                chunk = sse_chunk("stop", json.dumps(payload))
                self.broadcast(f"stop:{payload['order_id']}", chunk)


@router.get("/events", name="console_dispatch_events")
async def dispatch_events(request: Request) -> Response:
    me = await console_user_of(request, Action.PLANS_READ)
    runtime: Runtime = request.app.state.runtime
    merchant_id, timezone = me.merchant.id, me.merchant.timezone
    last_id = request.headers.get("last-event-id", "")
    fanout = fanout_of(request.app.state)
    key = f"dispatch:{merchant_id}:{timezone}"

    def missed(after: int) -> list[bytes]:
        with runtime.read_sessions() as session, session.begin():
            changed = orders_changed_since(session, merchant_id, after)
            seq_of = {order_id: seq for seq, order_id in changed}
            watched = watch_stops(session, merchant_id, seq_of, runtime.clock.now())
        replay = sorted((seq_of[w.order_id], stop_payload(w, timezone)) for w in watched)
        return [sse_chunk("stop", json.dumps(p), str(seq)) for seq, p in replay]

    def make() -> DispatchFeed:
        return DispatchFeed(runtime, merchant_id, timezone)

    # Joined before the replay is read: nothing committed from now on can be missed.
    joined = await fanout.join(key, make)
    assert joined is not None  # a merchant's map always has something to watch
    feed, mailbox = joined

    async def stream() -> AsyncIterator[bytes]:
        try:
            if last_id.isdigit():
                for chunk in await run_in_threadpool(missed, int(last_id)):
                    yield chunk
            yield READY
            async for chunk in mailbox.stream(runtime.settings.live_stream_max_s):
                yield chunk
        finally:
            fanout.leave(key, feed, mailbox)

    return LiveResponse(
        stream(),
        ping=runtime.settings.live_ping_s,
        send_timeout=SEND_TIMEOUT_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
