"""Why an order was left out of a plan, in one sentence a dispatcher can act on."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from doorstep.domain.dispatch.inputs import DayInput, OrderInput, ShiftInput
from doorstep.routing.problem import UnassignedReason


def _hhmm(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%H:%M")


def _shift_hours(shift: ShiftInput, day: DayInput) -> str:
    """``08:00-17:00``: the shift, or what the depot's opening hours leave of it."""
    span = day.depot_span(shift) if day.opening_hours else None
    start, end = (span.leave_at, span.back_by) if span else (shift.start_at, shift.end_at)
    return f"{_hhmm(start, day.tz)}-{_hhmm(end, day.tz)}"


def unassigned_detail(reason: UnassignedReason, order: OrderInput, day: DayInput) -> str:
    """One sentence a dispatcher can act on."""
    shifts = day.shifts
    if reason is UnassignedReason.OVER_CAPACITY:
        biggest = max(shifts, key=lambda s: (s.capacity_g, s.capacity_parcels), default=None)
        room = (
            (
                f"; the largest vehicle takes {biggest.capacity_g / 1000:g} kg and "
                f"{biggest.capacity_parcels} parcels"
            )
            if biggest
            else ""
        )
        return f"{order.weight_g / 1000:g} kg in {order.parcels} parcel(s) does not fit{room}"
    if reason is UnassignedReason.MISSING_SKILL:
        have = set().union(*(s.skills for s in shifts)) if shifts else set()
        missing = sorted(order.skills - have) or sorted(order.skills)
        return f"needs {', '.join(missing)}; no shift's driver or vehicle has all of it"
    if reason is UnassignedReason.OUTSIDE_SHIFTS:
        spans = ", ".join(_shift_hours(s, day) for s in shifts)
        if order.window_start is not None and order.window_end is not None:
            window = f"{_hhmm(order.window_start, day.tz)}-{_hhmm(order.window_end, day.tz)}"
            return f"the window {window} is outside every shift ({spans or 'none'})"
        return f"no shift can serve it ({spans or 'none'})"
    if reason is UnassignedReason.WINDOW_IMPOSSIBLE:
        return "no vehicle can get there within its window and be back by the end of its shift"
    if reason is UnassignedReason.UNREACHABLE:
        return "the address cannot be reached from the depot on the travel network"
    if reason is UnassignedReason.OUTSIDE_COVERAGE:
        return (
            "the address is outside the road map's coverage (the loaded OSM extract); "
            "check its coordinates or load a larger extract"
        )
    if reason is UnassignedReason.NOT_LOADED:
        return (
            "only a vehicle that has already left the depot could make it, and its parcels are "
            "not on board; add a shift from the depot or re-plan once a vehicle is back"
        )
    return "every vehicle that could take it had no time left; add a shift or widen the window"
