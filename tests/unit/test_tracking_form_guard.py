"""The tracking forms' stateless guard: the form token is bound to the link and the server's
secret, and the Origin check accepts the server's own address and its configured base URL
(behind a proxy) but nothing else a browser says came from elsewhere."""

from __future__ import annotations

from doorstep.web.pages.tracking_selfservice import form_token, form_token_ok, origin_ok

OWN = "http://127.0.0.1:8000/"
BASE = "https://track.shop.example"


def test_the_form_token_is_bound_to_the_link_and_the_secret() -> None:
    """A token checks for its own link only, and changes with the secret; empty never checks."""
    token = form_token("s3cret-one", "link-a")
    assert form_token_ok("s3cret-one", "link-a", token)
    assert not form_token_ok("s3cret-one", "link-b", token)
    assert not form_token_ok("s3cret-two", "link-a", token)
    assert not form_token_ok("s3cret-one", "link-a", "")
    assert not form_token_ok("s3cret-one", "link-a", None)


def test_origin_check_accepts_only_this_server() -> None:
    """Same origin and the public base URL pass, as does a client that sends no Origin; another
    site, a null Origin or a cross-site fetch are refused."""
    assert origin_ok({"origin": "http://127.0.0.1:8000"}, OWN, BASE)
    assert origin_ok({"origin": "https://track.shop.example"}, OWN, BASE)
    assert origin_ok({}, OWN, BASE)
    assert origin_ok({"sec-fetch-site": "same-origin"}, OWN, None)
    assert not origin_ok({"origin": "https://evil.example"}, OWN, BASE)
    assert not origin_ok({"origin": "null"}, OWN, BASE)
    assert not origin_ok({"origin": "http://127.0.0.1:8001"}, OWN, None)
    assert not origin_ok({"sec-fetch-site": "cross-site"}, OWN, BASE)
