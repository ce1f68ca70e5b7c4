"""Translations for recipient-facing pages (English, French, Finnish) from Babel catalogues.

The catalogues are ``locale/<lang>/LC_MESSAGES/doorstep.po``. They are compiled in memory the
first time a language is used (no ``.mo`` build step, so a fresh ``make install`` has them).
English is the source language. The language is the first of: the recipient's locale, the
browser's ``Accept-Language``, the merchant's locale, English.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "doorstep"
LANGUAGES = ("en", "fr", "fi")
DEFAULT_LANGUAGE = "en"


def N_(message: str) -> str:
    """Mark ``message`` for translation without translating it here."""
    return message


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalogue of ``lang`` (a no-op one for English or a missing file)."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang == DEFAULT_LANGUAGE or not path.exists():
        return NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def supported(tag: str | None) -> str | None:
    """The supported language of a locale tag (``fr``, ``fr-FR``, ``fi_FI``), or ``None``."""
    if not tag:
        return None
    try:
        language = Locale.parse(tag.strip().replace("-", "_")).language
    except (ValueError, UnknownLocaleError):
        language = tag.strip().split("-")[0].split("_")[0].lower()
    return language if language in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The best supported language of an ``Accept-Language`` header, by its q-values."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag))
    for _q, _i, tag in sorted(ranked):
        language = supported(tag)
        if language:
            return language
    return None


def choose_language(
    recipient_locale: str | None, accept_language: str | None, merchant_locale: str | None
) -> str:
    return (
        supported(recipient_locale)
        or from_accept_language(accept_language)
        or supported(merchant_locale)
        or DEFAULT_LANGUAGE
    )
