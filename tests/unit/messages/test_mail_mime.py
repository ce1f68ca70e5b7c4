"""The e-mail as a mail client reads it: the relay writes MIME itself (ADR 0011), so these
parse its bytes with the standard library's parser and ``icalendar``, with the awkward cases
(non-ASCII names and subjects, long lines, commas and semicolons in the calendar, a line
break smuggled into a subject)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

from icalendar import Calendar

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.notifications.mail import ComposedEmail, compose_email
from doorstep.domain.notifications.templates import Rendered
from doorstep.domain.orders.models import Order

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _merchant() -> Merchant:
    return Merchant(
        id="mer_1",
        name="Fleurs & Crème, Société; Ørsted",
        timezone="Europe/Paris",
        locale="fr",
        branding={"support_email": "aide@fleurs.example"},
    )


def _order() -> Order:
    return Order(
        id="ord_1",
        merchant_id="mer_1",
        reference="SO-1001",
        recipient_name="Zoë Ågren",
        address_line1="12, rue de l'Église; bâtiment B, escalier C, porte 4 au fond de la cour",
        city="Saint-Étienne",
        postal_code="42000",
        country="FR",
        window_start=NOW + timedelta(days=1),
        window_end=NOW + timedelta(days=1, hours=2),
        window_sequence=3,
    )


def _compose(subject: str, body: str, with_calendar: bool = True) -> ComposedEmail:
    return compose_email(
        merchant=_merchant(),
        order=_order(),
        to="zoe@example.com",
        rendered=Rendered(subject, body, "fr"),
        public_id="msg_01TEST",
        mail_from="Doorstep <noreply@doorstep.example>",
        base_url="https://track.example",
        now=NOW,
        tracking_url="https://track.example/t/" + "A" * 43,
        preferences_url="https://track.example/p/xyz",
        unsubscribe_url="https://track.example/u/" + "B" * 90,
        with_calendar=with_calendar,
    )


def _parse(mail: ComposedEmail) -> EmailMessage:
    msg = message_from_bytes(mail.data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_non_ascii_headers_and_bodies_read_back_exactly() -> None:
    """A French subject, a merchant name with specials, accented bodies: what the client shows
    is what the template rendered; every line is CRLF-terminated and at most 78 characters
    apart from an unbreakable URL."""
    subject = "Votre livraison « Fleurs & Crème » : mercredi 25 novembre, 14:00\u201316:00 🚚"
    body = "Bonjour Zoë,\n\nVotre commande arrive.\nLigne = égale, fin d'espace   \n\n.Point"
    mail = _compose(subject, body)
    msg = _parse(mail)
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].display_name == "Fleurs & Crème, Société; Ørsted"
    assert msg["From"].addresses[0].addr_spec == "noreply@doorstep.example"
    assert (mail.mail_from, mail.to) == ("noreply@doorstep.example", "zoe@example.com")
    assert msg["Message-ID"] == "<msg_01TEST@track.example>"
    assert msg["References"] == msg["In-Reply-To"] == "<ord_1@track.example>"
    assert msg["List-Unsubscribe"] == "<https://track.example/u/" + "B" * 90 + ">"
    assert msg["Reply-To"] == "aide@fleurs.example"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n").startswith(body)
    assert "Zoë" in html.get_content() and "ParcelDelivery" in html.get_content()
    raw = mail.data.split(b"\r\n")
    assert b"\n" not in b"".join(raw)  # no bare line feed anywhere
    assert all(len(line) <= 78 or b"https://" in line for line in raw)


def test_the_calendar_parses_with_escapes_and_folding() -> None:
    """Commas and semicolons in the address, a long location folded at 75 octets inside
    multi-byte characters: icalendar reads back the same values, UID and SEQUENCE."""
    msg = _parse(_compose("Votre livraison", "Bonjour"))
    [part] = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "delivery.ics"
    assert part.get_param("method") == "PUBLISH"
    ics = part.get_payload(decode=True)
    assert all(len(line) <= 75 for line in ics.split(b"\r\n"))
    [event] = [c for c in Calendar.from_ical(ics).walk() if c.name == "VEVENT"]
    assert str(event["UID"]) == "delivery-ord_1@track.example"
    assert int(event["SEQUENCE"]) == 3
    assert str(event["LOCATION"]) == (
        "12, rue de l'Église; bâtiment B, escalier C, porte 4 au fond de la cour, Saint-Étienne"
    )
    assert str(event["SUMMARY"]) == "Delivery: Fleurs & Crème, Société; Ørsted (SO-1001)"
    assert event.decoded("DTSTART") == NOW + timedelta(days=1)
    assert event.decoded("DTEND") == NOW + timedelta(days=1, hours=2)


def test_a_line_break_in_a_subject_cannot_add_a_header() -> None:
    """A merchant template rendering a newline into the subject yields one Subject header,
    not a second header smuggled in."""
    msg = _parse(_compose("Hello\r\nBcc: victim@example.com", "Body", with_calendar=False))
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Hello Bcc: victim@example.com"
    assert msg.get_content_type() == "multipart/alternative"
