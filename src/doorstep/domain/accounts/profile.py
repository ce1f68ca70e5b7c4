"""A merchant's own settings: name, timezone, locale, branding, default service time, and
``config``, the place for per-merchant settings that later features add.

Read and changed through ``GET``/``PATCH /v1/merchant`` and the console's Settings page, both
with these schemas and :func:`update_merchant`. Branding keys (``Merchant.branding``):
``logo_url``, ``color`` (``#RRGGBB``), ``support_email``, ``support_phone`` (E.164). Settings in
``Merchant.config`` are read through :func:`merchant_config`, with their defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
)
from sqlalchemy.orm import Session

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.errors import FieldError, NotFound, Unprocessable
from doorstep.domain.orders.schemas import normalise_country, normalise_locale, normalise_phone

_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
BRANDING_KEYS = ("logo_url", "color", "support_email", "support_phone")
DEFAULT_SERVICE_TIME_KEY = "default_service_time_s"
MAX_SERVICE_TIME_S = 86_400
MAX_CONFIG_BYTES = 20_000


def check_timezone(value: str) -> str:
    """An IANA timezone name (``Europe/Monaco``). Raises ``ValueError``."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {value!r}; e.g. 'Europe/Monaco'") from exc
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Branding(_Strict):
    """How the tracking page and messages look and whom recipients may contact."""

    logo_url: AnyHttpUrl | None = Field(default=None, description="http(s) URL of the logo")
    color: str | None = Field(default=None, description="Brand colour, `#RRGGBB`")
    support_email: EmailStr | None = None
    support_phone: str | None = Field(default=None, description="E.164, e.g. +37793000000")

    @field_validator("color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not _COLOR.match(value):
            raise ValueError("a colour is '#RRGGBB', e.g. '#0B6E4F'")
        return value.upper() if value else value

    @field_validator("support_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalise_phone(value, None) if value else None

    def stored(self) -> dict[str, str]:
        """The JSON kept in ``Merchant.branding`` (unset keys left out)."""
        values = self.model_dump(mode="json", exclude_none=True)
        return {k: str(v) for k, v in values.items()}


class MerchantOut(BaseModel):
    """The calling merchant's settings."""

    id: str
    name: str
    timezone: str
    locale: str
    country: str | None
    branding: Branding
    default_service_time_s: int | None = Field(
        description="Seconds at the door for orders that give none (null: the server default)"
    )
    config: dict[str, Any] = Field(description="Settings that features add, by key")
    created_at: datetime


class MerchantPatch(_Strict):
    """A JSON merge patch: absent fields stay; ``null`` clears; ``branding`` and ``config``
    merge key by key (a ``null`` value removes that key)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, description="IANA name, e.g. Europe/Monaco")
    locale: str | None = Field(default=None, description="BCP 47 tag, e.g. fr or pt-BR")
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2")
    branding: dict[str, Any] | None = None
    default_service_time_s: int | None = Field(default=None, ge=0, le=MAX_SERVICE_TIME_S)
    config: dict[str, Any] | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return check_timezone(value) if value is not None else None

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return normalise_locale(value) if value is not None else None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return normalise_country(value) if value is not None else None

    @field_validator("branding")
    @classmethod
    def _branding_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        unknown = sorted(set(value or {}) - set(BRANDING_KEYS))
        if unknown:
            raise ValueError(f"unknown branding keys {unknown}; known: {list(BRANDING_KEYS)}")
        return value


@dataclass(frozen=True)
class MerchantConfig:
    """Per-merchant settings from ``Merchant.config``, with their defaults."""

    default_service_time_s: int | None  # None: the server's DOORSTEP_DEFAULT_SERVICE_TIME_S


def merchant_config(merchant: Merchant) -> MerchantConfig:
    """The one accessor for this package's keys of ``Merchant.config``."""
    raw = (merchant.config or {}).get(DEFAULT_SERVICE_TIME_KEY)
    valid = isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0
    return MerchantConfig(default_service_time_s=raw if valid else None)


def merchant_out(merchant: Merchant) -> MerchantOut:
    branding = {k: v for k, v in (merchant.branding or {}).items() if k in BRANDING_KEYS}
    return MerchantOut(
        id=merchant.id,
        name=merchant.name,
        timezone=merchant.timezone,
        locale=merchant.locale,
        country=merchant.country,
        branding=Branding.model_validate(branding),
        default_service_time_s=merchant_config(merchant).default_service_time_s,
        config=dict(merchant.config or {}),
        created_at=merchant.created_at,
    )


def access_merchant(session: Session, merchant_id: str) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no such merchant")
    return merchant


def _merged(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def update_merchant(session: Session, merchant_id: str, patch: MerchantPatch) -> Merchant:
    """Apply ``patch`` to the merchant's settings (validated as a whole: 422 names each field)."""
    merchant = access_merchant(session, merchant_id)
    given = patch.model_fields_set
    errors: list[FieldError] = []
    for required in ("name", "timezone", "locale"):
        if required in given and getattr(patch, required) is None:
            errors.append(FieldError(required, "cannot be cleared", "required"))
    branding = merchant.branding or {}
    if "branding" in given:
        merged = _merged(branding, patch.branding or {}) if patch.branding is not None else {}
        try:
            branding = Branding.model_validate(merged).stored()
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            for err in getattr(exc, "errors", lambda: [])():
                field = ".".join(str(p) for p in err["loc"])
                message = str(err["msg"]).removeprefix("Value error, ")
                errors.append(FieldError(f"branding.{field}", message, str(err["type"])))
    config = dict(merchant.config or {})
    if "config" in given:
        config = _merged(config, patch.config or {}) if patch.config is not None else {}
    if "default_service_time_s" in given:
        config = _merged(config, {DEFAULT_SERVICE_TIME_KEY: patch.default_service_time_s})
    if len(repr(config)) > MAX_CONFIG_BYTES:
        errors.append(FieldError("config", "too large", "too_large"))
    if errors:
        raise Unprocessable("the merchant's settings are not valid", errors=errors)
    if patch.name is not None:
        merchant.name = patch.name
    if patch.timezone is not None:
        merchant.timezone = patch.timezone
    if patch.locale is not None:
        merchant.locale = patch.locale
    if "country" in given:
        merchant.country = patch.country
    merchant.branding = branding
    merchant.config = config
    session.flush()
    return merchant
