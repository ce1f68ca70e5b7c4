"""Composing a recipient e-mail: multipart text + HTML in the merchant's branding, schema.org
``ParcelDelivery`` JSON-LD, an iCalendar file when a window is announced or moves, RFC 8058
one-click unsubscribe, one ``Message-ID`` per outbox message and ``References`` per order."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.notifications.defaults import UNSUBSCRIBE_LABEL
from doorstep.domain.notifications.templates import Rendered
from doorstep.domain.orders.models import Order

_HTML = Environment(autoescape=select_autoescape(default=True)).from_string(
    """<!doctype html>
<html lang="{{ locale }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width">
<title>{{ subject }}</title>
<script type="application/ld+json">{{ jsonld }}</script>
</head>
<body style="margin:0;padding:0;background:#f4f4f5;font-family:system-ui,sans-serif;color:#18181b">
<div style="max-width:560px;margin:0 auto;background:#fff">
<div style="background:{{ color }};padding:16px 24px;color:#fff;font-weight:600">
{% if logo_url %}<img src="{{ logo_url }}" alt="{{ merchant_name }}" height="32">
{% else %}{{ merchant_name }}{% endif %}</div>
<div style="padding:24px;line-height:1.5">
{% for para in paragraphs %}<p>{{ para }}</p>
{% endfor %}
<p><a href="{{ tracking_url }}" style="display:inline-block;background:{{ color }};color:#fff;
padding:12px 20px;border-radius:6px;text-decoration:none">{{ track_label }}</a></p>
</div>
<div style="padding:16px 24px;font-size:12px;color:#52525b">
{% if support_email %}{{ support_email }}{% endif %}
{% if support_phone %} · {{ support_phone }}{% endif %}<br>
<a href="{{ preferences_url }}" style="color:#52525b">{{ prefs_label }}</a>
</div></div></body></html>"""
)


@lru_cache(maxsize=16)
def _domain(base_url: str) -> str:
    return urlsplit(base_url).hostname or "localhost"


def delivery_uid(order_id: str, base_url: str) -> str:
    """The iCalendar ``UID`` of an order's delivery, the same in every e-mail and on the
    tracking page's ``.ics``: a recipient who adds both gets one event that moves."""
    return f"delivery-{order_id}@{_domain(base_url)}"


def order_thread_id(order_id: str, base_url: str) -> str:
    """The ``References`` root shared by every e-mail about one order."""
    return f"<{order_id}@{_domain(base_url)}>"


def message_id(public_id: str, base_url: str) -> str:
    return f"<{public_id}@{_domain(base_url)}>"


def parcel_delivery_jsonld(merchant: Merchant, order: Order, tracking_url: str) -> dict[str, Any]:
    org = {"@type": "Organization", "name": merchant.name}
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "ParcelDelivery",
        "deliveryAddress": {
            "@type": "PostalAddress",
            "name": order.recipient_name,
            "streetAddress": order.address_line1,
            "addressLocality": order.city,
            "postalCode": order.postal_code,
            "addressCountry": order.country,
        },
        "trackingNumber": order.reference,
        "trackingUrl": tracking_url,
        "carrier": org,
        "provider": org,
        "partOfOrder": {"@type": "Order", "orderNumber": order.reference, "merchant": org},
    }
    if order.window_start:
        data["expectedArrivalFrom"] = order.window_start.astimezone(UTC).isoformat()
    if order.window_end:
        data["expectedArrivalUntil"] = order.window_end.astimezone(UTC).isoformat()
    return data


def _ics_text(value: str) -> str:
    """An iCalendar TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and line breaks
    escaped."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _ics_line(line: str) -> bytes:
    """One content line, folded at 75 octets (RFC 5545 3.1) without splitting a UTF-8
    character; continuation lines start with a space."""
    data = line.encode()
    if len(data) <= 75:
        return data + b"\r\n"
    out: list[bytes] = []
    start, limit = 0, 75
    while len(data) - start > limit:
        end = start + limit
        while data[end] & 0xC0 == 0x80:  # the middle of a multi-byte character
            end -= 1
        out.append(data[start:end])
        start, limit = end, 74  # after the leading space of a continuation line
    out.append(data[start:])
    return b"\r\n ".join(out) + b"\r\n"


def _ics_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def delivery_calendar(
    merchant: Merchant, order: Order, tracking_url: str, base_url: str, now: datetime
) -> bytes:
    """One VEVENT for the window: stable UID per order, SEQUENCE = ``window_sequence``.

    Written line by line rather than with ``icalendar`` (which the tests and the tracking page
    use): one fixed event of nine properties, and the library's typed properties cost 0.7 ms
    per e-mail, a fifth of the relay's CPU per message before this (ADR 0011)."""
    assert order.window_start is not None and order.window_end is not None
    location = ", ".join(p for p in (order.address_line1, order.city) if p)
    lines = (
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Doorstep//Delivery window//EN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{_ics_text(delivery_uid(order.id, base_url))}",
        f"SEQUENCE:{int(order.window_sequence)}",
        f"DTSTAMP:{_ics_time(now)}",
        f"DTSTART:{_ics_time(order.window_start)}",
        f"DTEND:{_ics_time(order.window_end)}",
        f"SUMMARY:{_ics_text(f'Delivery: {merchant.name} ({order.reference})')}",
        f"LOCATION:{_ics_text(location)}",
        f"URL:{tracking_url}",
        f"DESCRIPTION:{_ics_text(tracking_url)}",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    return b"".join(_ics_line(line) for line in lines)


@dataclass(frozen=True)
class ComposedEmail:
    """An e-mail ready for SMTP: the envelope and the message as bytes (CRLF line ends)."""

    mail_from: str
    to: str
    data: bytes


_CRLF = b"\r\n"


def _encoded_words(value: str) -> str:
    """``value`` as RFC 2047 encoded words (UTF-8, base64), each at most 64 characters and
    holding whole characters, folded one per line (so a line stays under 78). The standard
    library's ``Header`` finds each split by trying every prefix: 1.8 ms for one subject."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in value:
        width = len(char.encode())
        if size + width > 39:  # 39 bytes are 52 base64 characters
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    words.append("".join(chunk))
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word.encode()).decode()}?=" for word in words)


def _header(name: str, value: str) -> bytes:
    """``Name: value`` with CRLF. Line breaks in a value become spaces (no header injection);
    a non-ASCII value is written as encoded words, a long ASCII one folded at spaces."""
    if "\n" in value or "\r" in value:
        value = " ".join(value.splitlines())
    if not value.isascii():
        return f"{name}: {_encoded_words(value)}\r\n".encode()
    if len(name) + len(value) > 76 and " " in value:
        value = Header(value, "us-ascii", header_name=name).encode(linesep="\r\n")
    return f"{name}: {value}\r\n".encode()


@lru_cache(maxsize=16)
def _address(mail_from: str) -> str:
    return parseaddr(mail_from)[1]


@lru_cache(maxsize=256)
def _from(name: str, address: str) -> str:
    return formataddr((name, address), charset="utf-8")


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _text_part(subtype: str, text: str) -> bytes:
    """A UTF-8 text part, quoted-printable (``binascii``, in C)."""
    body = _crlf(binascii.b2a_qp(_crlf(text.encode()), istext=True))
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + body


def _multipart(subtype: str, boundary: str, parts: list[bytes]) -> bytes:
    """The parts between boundaries. A boundary starting ``=_`` cannot occur in
    quoted-printable or base64 text, the only encodings used here."""
    dash = f"--{boundary}".encode()
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    body = b"".join(dash + _CRLF + part + _CRLF for part in parts)
    return head + body + dash + b"--" + _CRLF


def _calendar_part(ics: bytes) -> bytes:
    return (
        b'Content-Type: text/calendar; charset="utf-8"; method=PUBLISH\r\n'
        b'Content-Disposition: attachment; filename="delivery.ics"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    ) + _crlf(base64.encodebytes(ics))


def compose_email(
    *,
    merchant: Merchant,
    order: Order | None,
    to: str,
    rendered: Rendered,
    public_id: str,
    mail_from: str,
    base_url: str,
    now: datetime,
    tracking_url: str = "",
    preferences_url: str = "",
    unsubscribe_url: str = "",
    with_calendar: bool = False,
    reply_to: str | None = None,
) -> ComposedEmail:
    """The full message, ready for SMTP.

    MIME is written directly (headers through :class:`email.header.Header` where they need
    encoding, bodies quoted-printable with :func:`binascii.b2a_qp`) instead of through
    :class:`email.message.EmailMessage`: composing and flattening with the standard
    library's default policy cost 3.8 ms per e-mail, the largest part of the relay's CPU;
    this path costs about 0.1 ms (ADR 0011). The tests read the result with the standard
    library's parser, as a mail client would."""
    from_addr = _address(mail_from)
    head = [
        _header("From", _from(merchant.name, from_addr)),
        _header("To", to),
        _header("Subject", rendered.subject),
        _header("Date", format_datetime(now.astimezone(UTC))),
        _header("Message-ID", message_id(public_id, base_url)),
    ]
    reply = reply_to or (merchant.branding or {}).get("support_email")
    if reply:
        head.append(_header("Reply-To", reply))
    if order is not None:
        root = order_thread_id(order.id, base_url)
        head += [_header("References", root), _header("In-Reply-To", root)]
    if unsubscribe_url:
        head.append(_header("List-Unsubscribe", f"<{unsubscribe_url}>"))
        head.append(_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    head.append(b"MIME-Version: 1.0\r\n")
    text = rendered.body
    if preferences_url:
        text += f"\n\n--\n{UNSUBSCRIBE_LABEL.get(rendered.locale, UNSUBSCRIBE_LABEL['en'])[1]}: "
        text += preferences_url
    body = _text_part("plain", text)
    if order is not None:
        branding = merchant.branding or {}
        labels = UNSUBSCRIBE_LABEL.get(rendered.locale, UNSUBSCRIBE_LABEL["en"])
        jsonld = json.dumps(parcel_delivery_jsonld(merchant, order, tracking_url))
        html = _HTML.render(
            locale=rendered.locale,
            subject=rendered.subject,
            # JSON from our own data, with "</" escaped so it cannot close the script element.
            jsonld=Markup(jsonld.replace("</", "<\\/")),  # noqa: S704
            color=branding.get("color") or "#1d4ed8",
            logo_url=branding.get("logo_url"),
            merchant_name=merchant.name,
            paragraphs=[p for p in rendered.body.split("\n\n") if p.strip()],
            tracking_url=tracking_url,
            preferences_url=preferences_url,
            track_label=labels[0],
            prefs_label=labels[1],
            support_email=branding.get("support_email"),
            support_phone=branding.get("support_phone"),
        )
        # Boundaries from the message's own id: unique per message, no random number.
        body = _multipart("alternative", f"=_alt_{public_id}", [body, _text_part("html", html)])
        if with_calendar and order.window_start and order.window_end:
            ics = delivery_calendar(merchant, order, tracking_url, base_url, now)
            body = _multipart("mixed", f"=_mix_{public_id}", [body, _calendar_part(ics)])
    return ComposedEmail(from_addr, to, b"".join(head) + body)
