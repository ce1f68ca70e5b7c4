"""Pure rules of recipient messages: SMS segments and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime

from doorstep.domain.notifications.config import NotificationConfig
from doorstep.domain.notifications.outbox import quiet_until
from doorstep.domain.notifications.templates import sms_length


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
