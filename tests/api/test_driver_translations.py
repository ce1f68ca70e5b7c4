"""The driver app in English, French and Finnish: chosen by the driver's switch, else the
browser's Accept-Language, else the merchant's locale; every text the driver sees (pages,
error messages, the script's messages, failure reasons) has a translation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from jinja2.ext import babel_extract

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.execution import FAILURE_REASONS
from doorstep.runtime import Runtime
from doorstep.web.i18n import LOCALE_DIR
from doorstep.web.templating import TEMPLATES_DIR
from tests.conftest import MerchantCtx
from tests.console_session import csrf_of
from tests.driving import Published, publish_day

WEB = TEMPLATES_DIR.parent
SOURCES = [
    *((TEMPLATES_DIR / "driver" / name, babel_extract) for name in
      ("app.html", "layout.html", "login.html", "link.html", "error.html")),
    (WEB / "pages" / "driver.py", "python"),
    (WEB / "pages" / "driver_view.py", "python"),
]  # fmt: skip


@pytest.fixture
def day(client: TestClient, runtime: Runtime, merchant: MerchantCtx) -> Published:
    return publish_day(client, runtime, merchant)


def _sign_in(client: TestClient, day: Published, **headers: str) -> None:
    issued = client.post(f"/v1/drivers/{day.driver_id}/login-link", headers=day.merchant.headers)
    path = issued.json()["url"].removeprefix("http://127.0.0.1:8000")
    page = client.get(path, headers=headers)
    assert client.post(path, data={"csrf_token": csrf_of(page)}).status_code == 303


def _texts(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="driver-texts">(.*?)</script>', html)
    assert found is not None
    texts: dict[str, object] = json.loads(found.group(1))
    return texts


def test_the_browser_language_then_the_switch_choose_the_language(
    client: TestClient, day: Published
) -> None:
    """A French browser gets the sign-in page and the app in French (the date, the buttons,
    the failure reasons and the script's texts); the switch then sets Finnish for this
    browser whatever it asks for; a wrong code is refused in Finnish."""
    french = client.get("/driver/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="fr">' in french.text
    assert "Connectez-vous pour rouler" in french.text and "Code de connexion" in french.text

    _sign_in(client, day, **{"Accept-Language": "fr"})
    app = client.get("/driver", headers={"Accept-Language": "fr"})
    assert '<html lang="fr">' in app.text
    assert "Commencer la tournée" in app.text and "mercredi 25 novembre 2026" in app.text
    assert "Personne à la maison" in app.text  # a failure reason
    assert re.search(r"· \d+ arrêts?</h2>", app.text)
    assert "Se déconnecter" in app.text and "Preuve de livraison" in app.text
    texts = _texts(app.text)
    assert texts["offline"] == "Hors ligne. Ce que vous enregistrez est conservé sur ce téléphone."
    assert texts["sending"] == {
        "one": "Envoi de %(count)s action enregistrée…",
        "other": "Envoi de %(count)s actions enregistrées…",
    }
    assert texts["labels"] == {
        "planned": "À faire",
        "en_route": "En route",
        "arrived": "Arrivé",
        "done": "Livré",
        "failed": "Non livré",
        "skipped": "Sauté",
    }

    switched = client.post(
        "/driver/language", data={"lang": "fi", "csrf_token": csrf_of(app), "back": "/driver"}
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/driver"
    finnish = client.get("/driver", headers={"Accept-Language": "fr"})
    assert '<html lang="fi">' in finnish.text and "Aloita reitti" in finnish.text
    assert 'aria-current="true">Suomi' in finnish.text

    client.post("/driver/logout", data={"csrf_token": csrf_of(finnish)})
    login = client.get("/driver/login")
    refused = client.post("/driver/login", data={"code": "000000", "csrf_token": csrf_of(login)})
    assert refused.status_code == 400
    assert "Koodi ei kelpaa." in refused.text


def test_a_wrong_address_under_driver_is_a_page_in_the_drivers_language(
    client: TestClient,
) -> None:
    """Not problem JSON: a 404 page in Finnish for a Finnish browser, leading to the route."""
    resp = client.get("/driver/reitti", headers={"Accept-Language": "fi"})
    assert resp.status_code == 404 and resp.headers["content-type"].startswith("text/html")
    assert '<html lang="fi">' in resp.text and "Sivua ei löytynyt" in resp.text
    assert 'href="/driver"' in resp.text


def test_the_switch_never_sends_the_driver_elsewhere(client: TestClient) -> None:
    """The switch goes back only to a page of the app; an unknown language changes nothing."""
    page = client.get("/driver/login")
    token = csrf_of(page)
    for back in ("https://evil.example/", "//evil.example/driver", "/console"):
        resp = client.post(
            "/driver/language", data={"lang": "fr", "csrf_token": token, "back": back}
        )
        assert resp.headers["location"] == "/driver"
    client.post("/driver/language", data={"lang": "de", "csrf_token": token, "back": "/driver"})
    assert '<html lang="fr">' in client.get("/driver/login").text


def test_the_browser_wins_over_the_merchants_locale_which_wins_over_english(
    client: TestClient, runtime: Runtime, day: Published
) -> None:
    """With no choice made, an English browser gets English from a French merchant; a browser
    asking for no language we have gets the merchant's French."""
    with transaction(runtime.sessions) as s:
        merchant = s.get(Merchant, day.merchant.id)
        assert merchant is not None
        merchant.locale = "fr"
    _sign_in(client, day)
    page = client.get("/driver", headers={"Accept-Language": "en-GB"})
    assert '<html lang="en">' in page.text and "Start route" in page.text
    assert "Wednesday, 25 November 2026" in page.text
    german = client.get("/driver", headers={"Accept-Language": "de-DE"})
    assert '<html lang="fr">' in german.text and "Commencer la tournée" in german.text


def test_every_driver_message_has_a_french_and_finnish_translation() -> None:
    """Each message of the driver app's templates, handlers, views and failure reasons is
    translated in both catalogues, plural forms included, with the same placeholders."""
    messages: set[str | tuple[str, str]] = set(FAILURE_REASONS.values())
    for path, method in SOURCES:
        keywords = {"_": None, "N_": None, "n": (1, 2)}
        for _line, msg, _comments, _ctx in extract_from_file(method, str(path), keywords=keywords):
            messages.add(msg if isinstance(msg, str) else (msg[0], msg[1]))
    assert len(messages) > 90
    for lang in ("fr", "fi"):
        with Path(LOCALE_DIR / lang / "LC_MESSAGES" / "doorstep.po").open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        for msg in messages:
            key = msg if isinstance(msg, str) else msg[0]
            entry = catalog.get(key)
            assert entry is not None and entry.string, f"{lang}: {key!r} untranslated"
            forms = [entry.string] if isinstance(entry.string, str) else list(entry.string)
            if not isinstance(msg, str):
                assert len(forms) == 2 and all(forms), (lang, key)
            for form in forms:
                wanted = set(re.findall(r"%\(\w+\)s", key))
                assert set(re.findall(r"%\(\w+\)s", form)) == wanted, (lang, key, form)
