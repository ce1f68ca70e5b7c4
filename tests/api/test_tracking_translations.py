"""The tracking page in French and Finnish: chosen by the recipient's locale first, then by the
browser's Accept-Language; and every message the page uses has a translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from jinja2.ext import babel_extract

from doorstep.runtime import Runtime
from doorstep.web.i18n import LOCALE_DIR, choose_language
from doorstep.web.templating import TEMPLATES_DIR
from tests.conftest import MerchantCtx
from tests.tracking_scene import build_scene, set_status

WEB = TEMPLATES_DIR.parent
SOURCES = [
    (TEMPLATES_DIR / "tracking" / "page.html", babel_extract),
    (TEMPLATES_DIR / "tracking" / "not_found.html", babel_extract),
    (TEMPLATES_DIR / "tracking" / "selfservice.html", babel_extract),
    (WEB / "pages" / "tracking_view.py", "python"),
    (WEB / "pages" / "tracking.py", "python"),
    (WEB / "pages" / "tracking_selfservice.py", "python"),
]


def test_recipient_locale_wins_over_the_browser_language(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A recipient with locale fr gets French even from an English browser; one without a
    locale gets the browser's Finnish; the 404 page follows the browser too."""
    scene = build_scene(app_client, runtime, merchant, locales=("fr", None, None))
    set_status(app_client, scene, 0, "scheduled")
    french = app_client.get(scene.path(0), headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="fr">' in french.text
    assert "Bonjour Ada," in french.text
    assert "Votre livraison est planifiée" in french.text
    assert "Créneau de livraison" in french.text and "mercredi 25 novembre 2026" in french.text
    finnish = app_client.get(scene.path(1), headers={"Accept-Language": "de;q=0.9, fi;q=0.95"})
    assert '<html lang="fi">' in finnish.text
    assert "Hei Grace," in finnish.text
    assert "Tilaus vastaanotettu" in finnish.text
    assert "9.00\u201311.00" in finnish.text
    english = app_client.get(scene.path(2))
    assert '<html lang="en">' in english.text and "Hello Alan," in english.text
    missing = app_client.get("/t/unknown", headers={"Accept-Language": "fr"})
    assert missing.status_code == 404 and "Lien de suivi introuvable" in missing.text


def test_language_choice_order() -> None:
    """Recipient locale, then Accept-Language by q-value, then the merchant's, then English."""
    assert choose_language("fi_FI", "fr", "en") == "fi"
    assert choose_language("de", "en;q=0.1, fr;q=0.8", "fi") == "fr"
    assert choose_language(None, "de", "fi") == "fi"
    assert choose_language(None, None, "de") == "en"


def test_every_message_has_a_french_and_finnish_translation() -> None:
    """Each message the tracking page can show is translated in both catalogues, with the same
    placeholders."""
    messages: set[str | tuple[str, str]] = set()
    for path, method in SOURCES:
        keywords = {"_": None, "N_": None, "n": (1, 2)}
        for _line, msg, _comments, _ctx in extract_from_file(method, str(path), keywords=keywords):
            messages.add(msg if isinstance(msg, str) else (msg[0], msg[1]))
    assert len(messages) > 50
    for lang in ("fr", "fi"):
        with Path(LOCALE_DIR / lang / "LC_MESSAGES" / "doorstep.po").open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        for msg in messages:
            key = msg if isinstance(msg, str) else msg[0]
            entry = catalog.get(key)
            assert entry is not None and entry.string, f"{lang}: {key!r} untranslated"
            translated = entry.string if isinstance(entry.string, str) else entry.string[-1]
            for placeholder in (
                "%(name)s",
                "%(merchant)s",
                "%(count)s",
                "%(time)s",
                "%(minutes)s",
                "%(neighbour)s",
                "%(house)s",
                "%(place)s",
                "%(point)s",
                "%(day)s",
            ):
                assert (placeholder in key) == (placeholder in translated), (lang, key)
