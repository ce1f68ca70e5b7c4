"""The merchant's message settings, read from ``Merchant.config["notifications"]`` through
:func:`notification_config`, with defaults that need no configuration.

Keys (all optional):

* ``triggers``: ``{trigger: [channel, ...]}``; a trigger left out keeps its default
  (every trigger on ``email`` and ``sms``); ``[]`` turns it off.
* ``sms_url`` / ``chat_url``: apprise URLs for SMS and chat; ``{phone}`` is replaced by the
  recipient's E.164 number. Without a URL the channel sends nothing.
* ``arriving_soon_minutes`` (10): an ETA under this many minutes is "arriving soon".
* ``eta_message_interval_minutes`` (30): at most one ETA-driven message per order this often.
* ``quiet_hours`` (``["21:00", "08:00"]``, ``null`` for none): non-urgent messages wait.
* ``reply_to``: an address recipients' replies go to (else ``branding.support_email``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from typing import Any

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.errors import FieldError, Unprocessable


class Trigger(StrEnum):
    ORDER_CONFIRMED = "order_confirmed"
    WINDOW_CHANGED = "window_changed"
    OUT_FOR_DELIVERY = "out_for_delivery"
    ARRIVING_SOON = "arriving_soon"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    ATTEMPT_FAILED = "attempt_failed"
    # Confirmations of the recipient's own changes on the tracking page.
    REDIRECTED = "redirected"
    HELD = "held"
    INSTRUCTIONS_CHANGED = "instructions_changed"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    CHAT = "chat"
    WEBHOOK = "webhook"


RECIPIENT_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.CHAT)
# These go out even in quiet hours: the recipient needs them now or never.
URGENT = frozenset({Trigger.OUT_FOR_DELIVERY, Trigger.ARRIVING_SOON, Trigger.DELAYED})
# Messages driven by the ETA, limited to one per ``eta_message_interval_minutes``.
ETA_DRIVEN = frozenset({Trigger.DELAYED})
# Messages that tell the recipient the ETA window: an "arriving soon" minutes after one of
# them is folded into it (outbox.fold_reason).
ETA_BEARING = frozenset({Trigger.OUT_FOR_DELIVERY, Trigger.DELAYED})

DEFAULT_CHANNELS: tuple[str, ...] = (Channel.EMAIL.value, Channel.SMS.value)


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class NotificationConfig:
    triggers: dict[str, list[str]] = field(default_factory=dict)
    sms_url: str | None = None
    chat_url: str | None = None
    arriving_soon_minutes: int = 10
    eta_message_interval_minutes: int = 30
    quiet_hours: tuple[time, time] | None = (time(21, 0), time(8, 0))
    reply_to: str | None = None

    def channels_for(self, trigger: Trigger) -> list[str]:
        return list(self.triggers.get(trigger.value, DEFAULT_CHANNELS))


def notification_config(merchant: Merchant) -> NotificationConfig:
    """The merchant's message settings with defaults filled in."""
    raw: dict[str, Any] = dict((merchant.config or {}).get("notifications") or {})
    quiet: tuple[time, time] | None = NotificationConfig.quiet_hours
    if "quiet_hours" in raw:
        value = raw["quiet_hours"]
        quiet = (_hhmm(value[0]), _hhmm(value[1])) if value else None
    triggers = {str(k): [str(c) for c in v] for k, v in dict(raw.get("triggers") or {}).items()}
    return NotificationConfig(
        triggers=triggers,
        sms_url=raw.get("sms_url"),
        chat_url=raw.get("chat_url"),
        arriving_soon_minutes=_int(raw.get("arriving_soon_minutes"), 10),
        eta_message_interval_minutes=_int(raw.get("eta_message_interval_minutes"), 30),
        quiet_hours=quiet,
        reply_to=raw.get("reply_to"),
    )


def notification_settings_out(merchant: Merchant) -> dict[str, Any]:
    """The merchant's message settings as the API shows them (defaults filled in)."""
    config = notification_config(merchant)
    return {
        "triggers": {t.value: config.channels_for(t) for t in Trigger},
        "sms_url": config.sms_url,
        "chat_url": config.chat_url,
        "arriving_soon_minutes": config.arriving_soon_minutes,
        "eta_message_interval_minutes": config.eta_message_interval_minutes,
        "quiet_hours": (
            [f"{config.quiet_hours[0]:%H:%M}", f"{config.quiet_hours[1]:%H:%M}"]
            if config.quiet_hours
            else None
        ),
        "reply_to": config.reply_to,
    }


def update_notification_settings(merchant: Merchant, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` (already validated) into ``Merchant.config["notifications"]``."""
    errors: list[FieldError] = []
    triggers = changes.get("triggers")
    if triggers is not None:
        for name, channels in triggers.items():
            if name not in {t.value for t in Trigger}:
                errors.append(FieldError(f"triggers.{name}", "unknown trigger"))
            bad = [c for c in channels if c not in {c.value for c in RECIPIENT_CHANNELS}]
            if bad:
                errors.append(FieldError(f"triggers.{name}", f"unknown channel {bad[0]}"))
    for key in ("sms_url", "chat_url"):
        url = changes.get(key)
        if url is not None and "://" not in url:
            errors.append(FieldError(key, "an apprise URL such as twilio://... or json://..."))
    quiet = changes.get("quiet_hours", ())
    if quiet:
        try:
            _hhmm(quiet[0]), _hhmm(quiet[1])
        except (ValueError, IndexError):
            errors.append(FieldError("quiet_hours", 'two times as ["HH:MM", "HH:MM"]'))
    if errors:
        raise Unprocessable("the message settings are not valid", errors=errors)
    config = dict(merchant.config or {})
    current = dict(config.get("notifications") or {})
    if triggers is not None:
        current["triggers"] = {**dict(current.get("triggers") or {}), **triggers}
    for key, value in changes.items():
        if key == "triggers":
            continue
        if value is None and key != "quiet_hours":
            current.pop(key, None)  # null: back to the default
        else:
            current[key] = value
    config["notifications"] = current
    merchant.config = config  # a new dict, so the JSON column is seen as changed
    return notification_settings_out(merchant)
