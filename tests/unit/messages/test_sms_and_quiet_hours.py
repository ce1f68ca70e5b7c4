"""Pure rules of recipient messages: SMS segments, quiet hours and the recipient's timezone."""

from __future__ import annotations

from datetime import UTC, datetime

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.notifications.config import NotificationConfig
from doorstep.domain.notifications.outbox import quiet_until, recipient_timezone
from doorstep.domain.notifications.templates import message_context, sms_length
from doorstep.domain.orders.models import Order


def test_sms_segments_in_gsm7_and_ucs2() -> None:
    """160 GSM-7 characters are one SMS, 161 are two; an emoji switches to UCS-2 (70/67)."""
    assert sms_length("a" * 160).segments == 1
    assert sms_length("a" * 161).segments == 2
    assert sms_length("€" * 80).units == 160  # the euro sign is an extension character
    assert sms_length("é" * 10).encoding == "GSM-7"
    assert sms_length("ő" * 70).segments == 1  # not in GSM-7
    assert sms_length("ő" * 71).segments == 2
    assert sms_length("🙂" * 35).units == 70  # surrogate pairs


def test_quiet_hours_wrap_midnight_in_the_recipients_timezone() -> None:
    """22:30 in Monaco waits until 08:00 local (07:00 UTC); 12:00 does not wait."""
    config = NotificationConfig()
    late = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)
    assert quiet_until(config, None, "Europe/Monaco", late) == datetime(
        2026, 11, 25, 7, 0, tzinfo=UTC
    )
    early = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 06:00 local
    assert quiet_until(config, None, "Europe/Monaco", early) == datetime(
        2026, 11, 25, 7, 0, tzinfo=UTC
    )
    noon = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    assert quiet_until(config, None, "Europe/Monaco", noon) is None
    assert quiet_until(NotificationConfig(quiet_hours=None), None, "UTC", late) is None


def test_quiet_hours_end_at_local_eight_across_the_dst_change() -> None:
    """In Helsinki the clocks go back on 25 October 2026 (EEST +3 to EET +2) and forward on
    29 March 2026: a message at 22:00 local waits until 08:00 local on the other side of the
    change, so one hour more (or less) in UTC than a naive 10 hours."""
    config = NotificationConfig()
    autumn = datetime(2026, 10, 24, 19, 0, tzinfo=UTC)  # 22:00 EEST
    assert quiet_until(config, None, "Europe/Helsinki", autumn) == datetime(
        2026,
        10,
        25,
        6,
        0,
        tzinfo=UTC,  # 08:00 EET: 11 hours later
    )
    spring = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # 22:00 EET
    assert quiet_until(config, None, "Europe/Helsinki", spring) == datetime(
        2026,
        3,
        29,
        5,
        0,
        tzinfo=UTC,  # 08:00 EEST: 9 hours later
    )
    # 02:30 on the night of the change is inside, and still ends at 08:00 local.
    night = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 03:30 EEST
    assert quiet_until(config, None, "Europe/Helsinki", night) == datetime(
        2026, 10, 25, 6, 0, tzinfo=UTC
    )


def test_the_recipients_timezone_comes_from_the_address_country() -> None:
    """A country with one zone gives it; the merchant's own zone wins when it is one of the
    country's; a country with several zones, or none given, keeps the merchant's."""
    paris = Merchant(id="mer_1", name="Shop", timezone="Europe/Paris", locale="fr")
    assert recipient_timezone(Order(country="FI"), paris) == "Europe/Helsinki"
    assert recipient_timezone(Order(country="fr"), paris) == "Europe/Paris"
    assert recipient_timezone(Order(country=None), paris) == "Europe/Paris"
    assert recipient_timezone(Order(country="US"), paris) == "Europe/Paris"
    monaco = Merchant(id="mer_2", name="Shop", timezone="Europe/Monaco", locale="fr")
    assert recipient_timezone(Order(country="MC"), monaco) == "Europe/Monaco"


def test_message_times_are_shown_in_the_recipients_timezone() -> None:
    """A Paris shop's parcel for Helsinki shows its window, ETA and delivery time in Helsinki
    time (an hour later than Paris in November); one for Lyon in Paris time."""
    merchant = Merchant(id="mer_1", name="Paris Shop", timezone="Europe/Paris", locale="en")
    start = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    end = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)

    def shown(country: str) -> dict[str, object]:
        order = Order(
            id="ord_1",
            merchant_id="mer_1",
            reference="SO-1",
            recipient_name="Aino Virtanen",
            country=country,
            window_start=start,
            window_end=end,
            delivered_at=end,
        )
        eta = {"eta": "2026-11-25T12:30:00+00:00", "earliest": None, "latest": None}
        return message_context(
            merchant,
            order,
            "en",
            event_data={},
            tracking_url="https://t.example/t/x",
            preferences_url="https://t.example/p/x",
            eta=eta,
        )

    helsinki = shown("FI")
    assert helsinki["window"] == "Wed 25 Nov, 14:00\u201316:00"
    assert (helsinki["eta"], helsinki["delivered_at"]) == ("14:30", "Wed 25 Nov, 16:00")
    paris = shown("FR")
    assert paris["window"] == "Wed 25 Nov, 13:00\u201315:00"
    assert paris["eta"] == "13:30"
