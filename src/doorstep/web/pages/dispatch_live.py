"""The dispatch map, live: ``GET /console/dispatch/events`` streams (SSE, session-authenticated)
what happens in the signed-in user's merchant, for ``static/dispatch.js`` to apply:

* ``vehicle``: a route's new position (route id, driver id, lat, lon, heading);
* ``stop``: an order's new state on its stop (status, ``late``/``at_risk``/"", expected time),
  whose SSE id is the event's sequence number; also, once a minute, stops whose window has
  just ended undelivered (late by the clock, with no event to say so). A browser
  reconnecting with ``Last-Event-ID`` first gets the state of every order that changed
  meanwhile (up to 500).

Streams end after ``live_stream_max_s``; the browser reconnects by itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from doorstep.domain.accounts.users import Action
from doorstep.domain.notifications.outbox import MESSAGE_EVENT_PREFIX
from doorstep.domain.tracking.watch import (
    StopWatch,
    became_late,
    orders_changed_since,
    watch_stops,
)
from doorstep.runtime import Runtime
from doorstep.web.pages.auth import ConsoleUser, require_permission

__all__ = ["router", "stop_payload"]

router = APIRouter(prefix="/console/dispatch", include_in_schema=False)
Reader = Annotated[ConsoleUser, Depends(require_permission(Action.PLANS_READ))]

# How often the stream looks for stops that became late by the clock alone.
LATE_CHECK_S = 60.0
ATTENTION_LABELS = {"late": "Late", "at_risk": "At risk"}


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


def _vehicle(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": "vehicle",
        "data": json.dumps(
            {
                "route_id": message.get("route_id"),
                "driver_id": message.get("driver_id"),
                "lat": message.get("lat"),
                "lon": message.get("lon"),
                "heading": message.get("heading"),
                "recorded_at": message.get("recorded_at"),
            }
        ),
    }


@router.get("/events", name="console_dispatch_events")
async def dispatch_events(request: Request, me: Reader) -> Response:
    runtime: Runtime = request.app.state.runtime
    merchant_id, timezone = me.merchant.id, me.merchant.timezone
    last_id = request.headers.get("last-event-id", "")
    max_s = runtime.settings.live_stream_max_s

    def states(order_ids: list[str]) -> list[dict[str, Any]]:
        with runtime.read_sessions() as session, session.begin():
            watched = watch_stops(session, merchant_id, order_ids, runtime.clock.now())
        return [stop_payload(w, timezone) for w in watched]

    def missed(after: int) -> list[tuple[int, dict[str, Any]]]:
        with runtime.read_sessions() as session, session.begin():
            changed = orders_changed_since(session, merchant_id, after)
            seq_of = {order_id: seq for seq, order_id in changed}
            watched = watch_stops(session, merchant_id, seq_of, runtime.clock.now())
        return sorted((seq_of[w.order_id], stop_payload(w, timezone)) for w in watched)

    def late_since(since: datetime) -> tuple[datetime, list[dict[str, Any]]]:
        now = runtime.clock.now()
        with runtime.read_sessions() as session, session.begin():
            watched = became_late(session, merchant_id, since, now)
        return now, [stop_payload(w, timezone) for w in watched]

    async def stream() -> AsyncIterator[dict[str, Any]]:
        sub = runtime.live.subscribe([f"merchant:{merchant_id}"])
        checked = runtime.clock.now()
        next_check = time.monotonic() + LATE_CHECK_S
        try:
            if last_id.isdigit():
                for seq, payload in await run_in_threadpool(missed, int(last_id)):
                    yield {"event": "stop", "id": str(seq), "data": json.dumps(payload)}
            yield {"event": "ready", "data": "{}"}
            deadline = time.monotonic() + max_s
            while (left := deadline - time.monotonic()) > 0:
                if time.monotonic() >= next_check:
                    checked, late = await run_in_threadpool(late_since, checked)
                    next_check = time.monotonic() + LATE_CHECK_S
                    for payload in late:
                        yield {"event": "stop", "data": json.dumps(payload)}
                wait = min(left, max(0.0, next_check - time.monotonic()))
                message = await sub.get(timeout=wait)
                if message is None:
                    continue
                if message.get("kind") == "position":
                    yield _vehicle(message)
                elif message.get("order_id") and not str(message.get("type", "")).startswith(
                    MESSAGE_EVENT_PREFIX
                ):  # a message sent about an order changes nothing on the map
                    for payload in await run_in_threadpool(states, [message["order_id"]]):
                        payload["route_id"] = message.get("route_id")
                        yield {
                            "event": "stop",
                            "id": str(message.get("seq", "")),
                            "data": json.dumps(payload),
                        }
        finally:
            sub.close()

    return EventSourceResponse(
        stream(),
        ping=runtime.settings.live_ping_s,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
