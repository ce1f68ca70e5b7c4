"""The KPI answer: one :class:`Summary` for the whole period and one per day, driver and zone,
plus the routes driven. Served by ``GET /v1/analytics/kpis``, shown by the console page and
written into the HTML report (ADR 0018 defines each figure)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

HORIZONS: tuple[str, ...] = ("route_start", "5_stops", "1_stop")
SELF_SERVICE_KINDS: tuple[str, ...] = (
    "rescheduled",
    "redirected",
    "held",
    "instructions_changed",
)


class Spread(BaseModel):
    """Minutes: how many samples, their median and 90th percentile (null without samples)."""

    n: int
    median: float | None
    p90: float | None


class Summary(BaseModel):
    """The KPIs of a set of orders. Rates are shares in [0, 1]; null when nothing to divide."""

    orders: int = Field(description="Orders whose promised window (else creation) is in range")
    delivered: int
    cancelled: int
    failed_attempts: int = Field(
        description="`delivery.failed` events in range, also of orders since rebooked out of it"
    )
    on_time: int
    on_time_rate: float | None = Field(
        description="Delivered inside [window_start, window_end], per delivered order with a window"
    )
    first_attempt: int = Field(description="Orders first attempted in range and delivered then")
    first_attempt_rate: float | None = Field(
        description="Orders whose first attempt, made in range, delivered; per order first "
        "attempted in range (one rebooked to another day after a failure counts as a miss)"
    )
    eta_abs_error_min: dict[str, Spread] = Field(
        description="|ETA - arrival| in minutes at route start, 5 stops and 1 stop away"
    )
    eta_window_coverage: dict[str, float | None] = Field(
        description="Share of arrivals inside the shown [earliest, latest], per horizon"
    )
    late: int = Field(description="Delivered after window_end")
    late_warned: int
    late_warned_share: float | None = Field(
        description="Late deliveries with a `delivery.delayed` event before the window ended"
    )
    warning_lead_min: Spread = Field(description="Minutes between the warning and window_end")
    late_by_min: Spread = Field(description="Minutes between window_end and the delivery")
    messages_sent: int = Field(description="Recipient messages (e-mail, SMS, chat) sent")
    messages_per_delivery: float | None = Field(
        description="Recipient messages sent per delivered order"
    )
    messages_per_delivery_by_channel: dict[str, float] = Field(
        description="Sent messages per delivered order, every channel including webhooks"
    )
    duplicate_messages: int = Field(
        description="Sent messages repeating an earlier one: same order, trigger, channel and "
        "address within one delivery attempt"
    )
    self_service: dict[str, int] = Field(
        description="Recipient/merchant changes: rescheduled, redirected, held, "
        "instructions_changed"
    )
    route_count: int | None = Field(description="Routes driven (null for zones)")
    distance_km: float | None
    driving_min: float | None


class Group(Summary):
    """The KPIs of one day (key ``YYYY-MM-DD``), driver (key = driver id) or zone."""

    key: str
    label: str


class RouteKpi(BaseModel):
    id: str
    day: date
    driver_id: str
    driver_name: str
    status: str
    stops: int
    distance_km: float
    driving_min: float


class KpiReport(Summary):
    """KPIs from ``from`` to ``to`` (local dates in ``timezone``, both included)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    timezone: str
    generated_at: datetime
    by_day: list[Group]
    by_driver: list[Group]
    by_zone: list[Group]
    routes: list[RouteKpi]
