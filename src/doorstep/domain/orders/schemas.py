"""The shapes of orders as integrators send and receive them, and the validation rules they share
with the CSV import (one set of rules, whichever door an order comes in by).

Inputs refuse unknown fields (``extra="forbid"``). Phone numbers come back in E.164 (a national
number is read in the address country), e-mail addresses normalised, countries as ISO 3166-1
alpha-2, locales as BCP 47 tags, windows with an offset and no longer than a week.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

import phonenumbers
from babel import Locale, UnknownLocaleError
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from doorstep.domain.errors import FieldError
from doorstep.domain.orders.location import LocationOut
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import AFTERSHIP_TAG, AfterShipTag, Reason, Status
from doorstep.domain.tracking.links import derive_token, tracking_token_for, tracking_url


class ServiceLevel(StrEnum):
    SAME_DAY = "same_day"
    NEXT_DAY = "next_day"
    SCHEDULED = "scheduled"


MAX_WINDOW = timedelta(days=7)
MAX_PARCELS = 100
PHONE_INVALID = "not a valid phone number"
NAIVE_DATETIME = "must include a UTC offset, e.g. 2026-11-25T14:00:00+01:00"

# ISO 3166-1 alpha-2: CLDR's two-letter territories minus the codes ISO only reserves (AC, CP,
# CQ, DG, EA, IC, TA), groupings (EU, EZ, UN, QO) and pseudo/unknown regions (XA, XB, ZZ). XK
# (Kosovo) is user-assigned but used by the EU, CLDR and libphonenumber, so it is accepted.
_NOT_COUNTRIES = frozenset(
    ("AC", "CP", "CQ", "DG", "EA", "IC", "TA", "EU", "EZ", "UN", "QO", "XA", "XB", "ZZ")
)
COUNTRIES: frozenset[str] = frozenset(
    code
    for code in Locale("en").territories
    if isinstance(code, str) and len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
)

Text1_100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text1_200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Coordinate = Annotated[float, Field(allow_inf_nan=False)]


# --- the rules, as plain functions (the CSV import calls the same ones through the models) ---


def normalise_phone(raw: str, region: str | None) -> str:
    """``raw`` as E.164; a national number is read in ``region``. Raises ``ValueError``."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(PHONE_INVALID) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(PHONE_INVALID)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=512)
def normalise_locale(tag: str) -> str:
    """A BCP 47 tag such as ``fr`` or ``pt-BR`` that CLDR knows. Raises ``ValueError``."""
    try:
        locale = Locale.parse(tag.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise ValueError(
            f"unknown locale {tag!r}; use a language tag such as 'fr' or 'pt-BR'"
        ) from exc
    return str(locale).replace("_", "-")


def normalise_country(code: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased. Raises ``ValueError``."""
    value = code.strip().upper()
    if value not in COUNTRIES:
        raise ValueError(
            f"{code!r} is not an ISO 3166-1 alpha-2 code; use the two-letter country code, "
            "e.g. 'FR' or 'MC'"
        )
    return value


def error_at(loc: tuple[str | int, ...], message: str, value: Any, kind: str) -> ValidationError:
    """A validation error placed at ``loc`` (relative to the model that raises it)."""
    detail = InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)
    return ValidationError.from_exception_data("Order", [detail])


def loc_to_field(loc: tuple[int | str, ...]) -> str:
    """``("parcels", 0, "weight_kg")`` → ``parcels[0].weight_kg``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "body"


def field_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """A Pydantic error as the domain's field errors (what problem documents list)."""
    return [
        FieldError(
            loc_to_field(prefix + tuple(err["loc"])),
            str(err["msg"]).removeprefix("Value error, "),
            str(err["type"]),
        )
        for err in exc.errors(include_url=False, include_input=False)
    ]


# --- inputs ---


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RecipientIn(_Input):
    """Who receives the parcels. A name is required; phone and e-mail let Doorstep tell them."""

    name: Text1_200
    phone: str | None = Field(default=None, max_length=40, description="E.164 or national")
    email: EmailStr | None = None
    locale: str | None = Field(default=None, description="BCP 47 tag, e.g. 'fr' or 'pt-BR'")

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return normalise_locale(value) if value else None


class AddressIn(_Input):
    """Where to deliver; coordinates are WGS 84 degrees. Without them the address is geocoded;
    one that cannot be placed is kept with ``location.state`` ``needs_location``."""

    line1: Text1_200
    line2: str | None = Field(default=None, max_length=200)
    city: Text1_100
    postal_code: str | None = Field(default=None, max_length=20)
    country: str = Field(description="ISO 3166-1 alpha-2, e.g. 'MC'")
    lat: Coordinate | None = Field(default=None, ge=-90, le=90)
    lon: Coordinate | None = Field(default=None, ge=-180, le=180)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return normalise_country(value)

    @model_validator(mode="after")
    def _both_or_neither(self) -> AddressIn:
        if (self.lat is None) != (self.lon is None):
            missing = "lat" if self.lat is None else "lon"
            raise error_at(
                (missing,), "give both lat and lon, or neither to geocode", None, "coordinates"
            )
        return self


class WindowIn(_Input):
    """The promised delivery window; both ends need a UTC offset."""

    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(NAIVE_DATETIME)
        return value

    @model_validator(mode="after")
    def _order_and_length(self) -> WindowIn:
        if self.end <= self.start:
            raise error_at(("end",), "must be after the window start", self.end, "window_order")
        if self.end - self.start > MAX_WINDOW:
            raise error_at(("end",), "a window may last at most 7 days", self.end, "window_length")
        return self


class ParcelIn(_Input):
    """One parcel of the order; all measurements optional."""

    weight_kg: float | None = Field(default=None, ge=0, le=1000, allow_inf_nan=False)
    length_cm: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    width_cm: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    height_cm: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    fragile: bool = False
    barcode: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=200)


class _OrderFields(_Input):
    """Fields an order has at creation and keeps while editable.

    ``address`` is declared before ``recipient`` on purpose: the recipient's national phone
    number is read in the address country, and Pydantic validates fields in order."""

    address: AddressIn
    recipient: RecipientIn
    window: WindowIn | None = None
    instructions: str | None = Field(default=None, max_length=1000)
    service_time_s: int | None = Field(
        default=None, ge=0, le=86_400, description="Seconds at the door; default per merchant"
    )

    @field_validator("recipient", mode="wrap")
    @classmethod
    def _phone_in_address_country(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> RecipientIn:
        # The phone is checked beside the other recipient fields (not after them), so a file
        # row with a bad locale *and* a bad phone gets both errors at once.
        raw = value.get("phone") if isinstance(value, dict) else getattr(value, "phone", None)
        address = info.data.get("address")
        region = address.country if isinstance(address, AddressIn) else None
        phone: str | None = None
        phone_error: InitErrorDetails | None = None
        if isinstance(raw, str) and raw.strip():
            try:
                phone = normalise_phone(raw.strip(), region)
            except ValueError as exc:
                phone_error = InitErrorDetails(
                    type=PydanticCustomError("phone_invalid", str(exc)), loc=("phone",), input=raw
                )
        try:
            recipient: RecipientIn = handler(value)
        except ValidationError as exc:
            if phone_error is None:
                raise
            others = [
                InitErrorDetails(
                    type=PydanticCustomError(err["type"], err["msg"]),
                    loc=err["loc"],
                    input=err["input"],
                )
                for err in exc.errors(include_url=False)
                if tuple(err["loc"]) != ("phone",)
            ]
            raise ValidationError.from_exception_data("Recipient", [*others, phone_error]) from exc
        if phone_error is not None:
            raise ValidationError.from_exception_data("Recipient", [phone_error])
        recipient.phone = phone
        return recipient


# The brief's example order, shown in the OpenAPI documentation.
EXAMPLE_ORDER: dict[str, Any] = json.loads(
    """{"reference": "SO-1001",
    "recipient": {"name": "Ada Lovelace", "phone": "+33612345678", "email": "ada@example.com",
                  "locale": "fr"},
    "address": {"line1": "1 Avenue de la Costa", "city": "Monaco", "postal_code": "98000",
                "country": "MC", "lat": 43.7405, "lon": 7.4263},
    "window": {"start": "2026-11-25T14:00:00+01:00", "end": "2026-11-25T16:00:00+01:00"},
    "service_level": "scheduled", "parcels": [{"weight_kg": 2.5, "fragile": true}],
    "instructions": "Door code 1234"}"""
)


def _needs_window(level: ServiceLevel, window: WindowIn | None) -> None:
    if level is ServiceLevel.SCHEDULED and window is None:
        raise error_at(("window",), "a scheduled order needs a window", None, "window_required")


class OrderCreate(_OrderFields):
    """An order as an integrator sends it (``POST /v1/orders``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_ORDER]})

    reference: Text1_100 = Field(description="Your own order number, unique per merchant")
    service_level: ServiceLevel | None = Field(
        default=None, description="Default: 'scheduled' with a window, else 'next_day'"
    )
    parcels: list[ParcelIn] = Field(
        default_factory=lambda: [ParcelIn()], min_length=1, max_length=MAX_PARCELS
    )
    reservation_id: str | None = Field(
        default=None,
        max_length=32,
        description="A held reservation (`POST /v1/slots/reservations`): confirms it, and the "
        "order gets its window and service level",
    )
    requires_pin: bool = Field(
        default=False,
        description="The driver must type the delivery PIN the recipient is shown to deliver",
    )

    @model_validator(mode="after")
    def _service_level(self) -> OrderCreate:
        if self.reservation_id is not None and self.window is None:
            return self  # the reservation's window and service level apply
        if self.service_level is None:
            self.service_level = (
                ServiceLevel.SCHEDULED if self.window is not None else ServiceLevel.NEXT_DAY
            )
        _needs_window(self.service_level, self.window)
        return self

    @property
    def level(self) -> ServiceLevel:
        """The service level after defaulting (never ``None`` once validated)."""
        return self.service_level or ServiceLevel.NEXT_DAY


class OrderEdit(_OrderFields):
    """The editable state of an order after a merge patch, validated as a whole."""

    service_level: ServiceLevel

    @model_validator(mode="after")
    def _window_for_scheduled(self) -> OrderEdit:
        _needs_window(self.service_level, self.window)
        return self


class RecipientPatch(_Input):
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    locale: str | None = None


class AddressPatch(_Input):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    lat: float | None = None
    lon: float | None = None


class WindowPatch(_Input):
    start: datetime | None = None
    end: datetime | None = None


class OrderPatch(_Input):
    """A JSON merge patch (RFC 7396): absent fields stay, ``null`` clears, objects merge."""

    recipient: RecipientPatch | None = None
    address: AddressPatch | None = None
    window: WindowPatch | None = None
    instructions: str | None = None
    service_time_s: int | None = None


class StatusChangeIn(_Input):
    """An explicit status change from an integrator or delivery partner."""

    status: Status
    reason: Reason | None = None
    occurred_at: datetime | None = Field(
        default=None, description="When it happened (with offset); default: now"
    )
    note: str | None = Field(default=None, max_length=500)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError(NAIVE_DATETIME)
        return value


class CancelIn(_Input):
    """Why the order is cancelled (optional body of ``POST /v1/orders/{id}/cancel``)."""

    reason: Reason = Reason.MERCHANT_CANCELLED
    note: str | None = Field(default=None, max_length=500)


# --- outputs ---


class RecipientOut(BaseModel):
    name: str
    phone: str | None
    email: str | None
    locale: str | None


class AddressOut(BaseModel):
    line1: str
    line2: str | None
    city: str
    postal_code: str | None
    country: str
    lat: float | None = Field(description="None while location.state is needs_location")
    lon: float | None


class WindowOut(BaseModel):
    start: datetime
    end: datetime


class ParcelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    position: int
    weight_kg: float | None
    length_cm: float | None
    width_cm: float | None
    height_cm: float | None
    fragile: bool
    barcode: str | None
    description: str | None


@dataclass(frozen=True)
class LinkKeys:
    """What answers need to show a tracking link and local times."""

    secret_key: str
    base_url: str
    timezone: str


def _tag(status: str) -> AfterShipTag:
    return AFTERSHIP_TAG[Status(status)]


def _reason(reason: str | None) -> Reason | None:
    return Reason(reason) if reason else None


class OrderOut(BaseModel):
    """An order as the API answers it. ``status`` says where, ``reason`` why, ``tag`` is the
    AfterShip equivalent of the status."""

    id: str
    reference: str
    status: Status
    reason: Reason | None
    tag: AfterShipTag
    tracking_url: str
    service_level: ServiceLevel
    recipient: RecipientOut
    address: AddressOut
    location: LocationOut
    window: WindowOut | None = Field(description="In the merchant's timezone")
    window_sequence: int = Field(description="Grows each time the window moves (iCal SEQUENCE)")
    parcels: list[ParcelOut]
    parcel_count: int
    weight_kg: float
    instructions: str | None
    service_time_s: int | None
    attempts: int
    requires_pin: bool
    delivery_pin: str | None = Field(
        description="What the recipient tells the driver at the door (when `requires_pin`)"
    )
    delivered_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: Order, keys: LinkKeys) -> OrderOut:
        """Present ``order`` (parcels loaded) for its merchant."""
        tz = ZoneInfo(keys.timezone)
        window = None
        if order.window_start is not None and order.window_end is not None:
            window = WindowOut(
                start=order.window_start.astimezone(tz), end=order.window_end.astimezone(tz)
            )
        return cls(
            id=order.id,
            reference=order.reference,
            status=Status(order.status),
            reason=_reason(order.reason),
            tag=_tag(order.status),
            tracking_url=tracking_url(keys.base_url, tracking_token_for(keys.secret_key, order)),
            service_level=ServiceLevel(order.service_level),
            recipient=RecipientOut(
                name=order.recipient_name,
                phone=order.recipient_phone,
                email=order.recipient_email,
                locale=order.recipient_locale,
            ),
            address=AddressOut(
                line1=order.address_line1,
                line2=order.address_line2,
                city=order.city,
                postal_code=order.postal_code,
                country=order.country,
                lat=order.lat,
                lon=order.lon,
            ),
            location=LocationOut.of(order),
            window=window,
            window_sequence=order.window_sequence,
            parcels=[ParcelOut.model_validate(p) for p in order.parcels],
            parcel_count=order.parcel_count,
            weight_kg=order.weight_kg,
            instructions=order.instructions,
            service_time_s=order.service_time_s,
            attempts=order.attempts,
            requires_pin=order.requires_pin,
            delivery_pin=order.delivery_pin,
            delivered_at=order.delivered_at,
            version=order.version,
            created_at=order.created_at,
            updated_at=order.updated_at,
        )


class OrderPage(BaseModel):
    """One page of orders, newest first; pass ``next_cursor`` back as ``cursor``."""

    data: list[OrderOut]
    next_cursor: str | None
    has_more: bool


class ActorOut(BaseModel):
    type: str
    id: str | None


class EventOut(BaseModel):
    """One entry of an order's timeline; ``status``/``reason``/``tag`` are as after the event."""

    id: str
    type: str
    occurred_at: datetime
    recorded_at: datetime
    actor: ActorOut
    status: Status | None
    reason: Reason | None
    tag: AfterShipTag | None
    data: dict[str, Any]

    @classmethod
    def of(cls, event: DeliveryEvent) -> EventOut:
        """Present one logged event."""
        return cls(
            id=event.id,
            type=event.type,
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
            actor=ActorOut(type=event.actor_type, id=event.actor_id),
            status=Status(event.status) if event.status else None,
            reason=_reason(event.reason),
            tag=_tag(event.status) if event.status else None,
            data=event.data,
        )


class TimelineOut(BaseModel):
    order_id: str
    data: list[EventOut]


class ImportedOrder(BaseModel):
    id: str
    reference: str
    status: Status
    reason: Reason | None
    tag: AfterShipTag
    tracking_url: str
    location_state: str = Field(description="located | needs_location (see the order)")


class NewOrderRef(Protocol):
    """The little an import keeps of each order it created."""

    @property
    def id(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def tracking_nonce(self) -> str: ...
    @property
    def location_state(self) -> str: ...


class ImportResult(BaseModel):
    """What one CSV import created (all rows or none), in file order."""

    import_id: str
    created: int
    orders: list[ImportedOrder]

    @classmethod
    def of(cls, import_id: str, orders: Sequence[NewOrderRef], keys: LinkKeys) -> ImportResult:
        """Present newly imported (so ``pending``) orders with their tracking links."""
        tag = AFTERSHIP_TAG[Status.PENDING]
        return cls(
            import_id=import_id,
            created=len(orders),
            orders=[
                ImportedOrder(
                    id=o.id,
                    reference=o.reference,
                    status=Status.PENDING,
                    reason=None,
                    tag=tag,
                    tracking_url=tracking_url(
                        keys.base_url, derive_token(keys.secret_key, o.id, o.tracking_nonce)
                    ),
                    location_state=o.location_state,
                )
                for o in orders
            ],
        )
