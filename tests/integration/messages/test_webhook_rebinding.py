"""Webhook SSRF and DNS rebinding, with a resolver the test controls: the endpoint's host is
resolved once per attempt, every address is checked, and the connection goes to the checked
address (keeping ``Host`` and the TLS server name), so a name that is public when checked and
loopback a moment later never reaches the server's network. Redirects are not followed."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from doorstep.domain.notifications.channels import Outcome, Outgoing, Vetting, deliver
from doorstep.domain.notifications.webhooks import UnsafeURL, blocked_address, check_url
from doorstep.settings import Settings
from tests.peers import http_receiver


class Resolver:
    """Answers from a script, one answer per call (the last one repeats); counts the calls."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def out(url: str) -> Outgoing:
    return Outgoing(
        id=1,
        public_id="msg_rebinding",
        channel="webhook",
        merchant_id="mer_1",
        url=url,
        headers={"webhook-id": "msg_rebinding", "content-type": "application/json"},
        body='{"type":"order.created"}',
    )


def send(
    settings: Settings, url: str, resolver: Resolver, transport: httpx.AsyncBaseTransport | None
) -> Outcome:
    async def go() -> Outcome:
        async with httpx.AsyncClient(transport=transport, follow_redirects=False) as client:
            return await deliver(out(url), client, None, settings, resolver=resolver)

    return asyncio.run(go())


@pytest.fixture
def strict(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private": False})


def test_a_name_public_at_create_and_loopback_at_send_is_refused(strict: Settings) -> None:
    """Checked at create (public), rebound to 127.0.0.1 before the send: the send's own single
    lookup sees it and nothing is sent."""
    resolver = Resolver(["93.184.216.34"], ["127.0.0.1"])
    check_url("https://hooks.example.test/in", allow_private=False, resolver=resolver)
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204))
    result = send(strict, "https://hooks.example.test/in", resolver, transport)
    assert not result.ok and result.error is not None
    assert result.error.startswith("refused:") and "127.0.0.1" in result.error
    assert sent == []
    assert resolver.calls == ["hooks.example.test", "hooks.example.test"]


def test_every_resolved_address_is_checked(strict: Settings) -> None:
    """One private address among public ones is enough to refuse (the client could pick it)."""
    for bad in ("10.0.0.7", "169.254.169.254", "::1", "::ffff:127.0.0.1", "fe80::1", "224.0.0.1"):
        resolver = Resolver(["93.184.216.34", bad])
        result = send(
            strict,
            "http://hooks.example.test/in",
            resolver,
            httpx.MockTransport(lambda r: httpx.Response(204)),
        )
        assert not result.ok and result.error and result.error.startswith("refused:"), bad
    assert blocked_address("::ffff:10.1.2.3") and not blocked_address("::ffff:93.184.216.34")
    with pytest.raises(UnsafeURL):
        check_url("http://user:pw@hooks.example.test/", allow_private=False)


def test_the_connection_goes_to_the_vetted_address_with_host_and_sni(strict: Settings) -> None:
    """The request is made to the checked IP, with the original Host header and TLS server
    name (so the certificate is still verified against the name); one lookup per attempt."""
    resolver = Resolver(["93.184.216.34"], ["127.0.0.1"])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    result = send(
        strict, "https://hooks.example.test:8443/in?x=1", resolver, httpx.MockTransport(handler)
    )
    assert result.ok
    [request] = seen
    assert request.url.host == "93.184.216.34" and request.url.port == 8443
    assert request.url.path == "/in" and request.url.query == b"x=1"
    assert request.headers["host"] == "hooks.example.test:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.test"
    assert resolver.calls == ["hooks.example.test"]


def test_a_real_connection_is_pinned_to_the_resolvers_answer(settings: Settings) -> None:
    """``hooks.example.test`` does not resolve on this machine: the POST reaches the local
    receiver only because the connection is made to the address the resolver gave."""
    allowed = settings.model_copy(update={"webhook_allow_private": True})
    with http_receiver() as peer:
        resolver = Resolver(["127.0.0.1"])
        result = send(allowed, f"http://hooks.example.test:{peer.port}/hook", resolver, None)
        assert result.ok, result.error
        [got] = peer.received
        assert got.headers["host"] == f"hooks.example.test:{peer.port}"
        assert got.headers["webhook-id"] == "msg_rebinding"


def test_a_redirect_is_not_followed(strict: Settings) -> None:
    """A 3xx is a failed attempt and its Location is never requested, even by a client that
    would follow redirects on its own."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://127.0.0.1:2375/containers"})

    async def go() -> Outcome:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
            resolver = Resolver(["93.184.216.34"])
            return await deliver(
                out("http://hooks.example.test/in"), client, None, strict, resolver
            )

    result = asyncio.run(go())
    assert not result.ok and result.status_code == 302
    assert seen == ["http://93.184.216.34/in"]


def test_a_batch_resolves_each_url_once_and_pins_every_send_to_it(settings: Settings) -> None:
    """Sends sharing a batch's vetting ask the resolver once per URL, and all of them go to
    the checked address even though the name answers loopback afterwards."""
    strict = settings.model_copy(update={"webhook_allow_private": False})
    resolver = Resolver(["93.184.216.34"], ["127.0.0.1"])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async def go() -> list[Outcome]:
        vetting: Vetting = {}
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            url = "https://hooks.example.test/in"
            sends = [deliver(out(url), client, None, strict, resolver, vetting) for _ in range(3)]
            return list(await asyncio.gather(*sends))

    assert all(result.ok for result in asyncio.run(go()))
    assert resolver.calls == ["hooks.example.test"]
    assert [r.url.host for r in seen] == ["93.184.216.34"] * 3
