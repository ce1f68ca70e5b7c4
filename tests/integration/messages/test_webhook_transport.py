"""The relay's HTTP transport against a local asyncio server that counts connections and
answers as real receivers do: kept alive, ``Connection: close``, chunked, too long, too slow,
closed while idle, or over TLS to a pinned address."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from doorstep.domain.notifications import transport as transport_module
from doorstep.domain.notifications.transport import MAX_BODY_BYTES, KeptConnections

Answer = Callable[[bytes], bytes | None]  # request head -> raw answer (None: say nothing)


class Receiver:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                raw = self.answer(head)
                if raw is None:
                    await asyncio.sleep(5)
                    return
                writer.write(raw)
                await writer.drain()
                if b"connection: close" in raw.lower():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@asynccontextmanager
async def receiver(answer: Answer) -> AsyncIterator[tuple[Receiver, str]]:
    peer = Receiver(answer)
    server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield peer, f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()
        for writer in peer.writers:
            writer.close()


def ok(_head: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def post(client: httpx.AsyncClient, url: str, body: bytes = b'{"a":1}') -> httpx.Response:
    return await client.post(url, content=body, headers={"webhook-id": "msg_1"})


def test_requests_share_a_kept_connection() -> None:
    """Ten POSTs one after another use one connection; each arrives whole."""

    async def go() -> None:
        async with receiver(ok) as (peer, url):
            async with httpx.AsyncClient(transport=KeptConnections()) as client:
                for _ in range(10):
                    resp = await post(client, url)
                    assert (resp.status_code, resp.text) == (200, "ok")
            assert peer.connections == 1
            assert len(peer.requests) == 10
            assert all(r.endswith(b'{"a":1}') and b"webhook-id: msg_1" in r for r in peer.requests)

    asyncio.run(go())


def test_connection_close_chunked_and_long_answers() -> None:
    """``Connection: close`` is honoured (next request on a new connection); a chunked answer
    is read whole; an answer longer than the cap is cut and its connection not reused."""
    answers = iter(
        [
            b"HTTP/1.1 500 Oops\r\nconnection: close\r\ncontent-length: 4\r\n\r\nfail",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (MAX_BODY_BYTES + 10)
            + b"x" * (MAX_BODY_BYTES + 10),
            ok(b""),
        ]
    )

    async def go() -> None:
        async with receiver(lambda _head: next(answers)) as (peer, url):
            async with httpx.AsyncClient(transport=KeptConnections()) as client:
                first = await post(client, url)
                assert (first.status_code, first.text) == (500, "fail")
                second = await post(client, url)
                assert (second.status_code, second.text) == (200, "abcde")
                third = await post(client, url)
                assert len(third.content) == MAX_BODY_BYTES
                fourth = await post(client, url)
                assert fourth.text == "ok"
            assert peer.connections == 3  # after the close and after the cut answer

    asyncio.run(go())


def test_a_connection_the_receiver_closed_while_idle_is_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The receiver drops the kept connection: the next POST goes on a fresh one and succeeds
    (it is not written into a dead socket). An expired idle connection is not reused either."""

    async def go() -> None:
        async with (
            receiver(ok) as (peer, url),
            httpx.AsyncClient(transport=KeptConnections()) as client,
        ):
            assert (await post(client, url)).status_code == 200
            peer.writers[0].close()
            await asyncio.sleep(0.1)  # the FIN reaches the client
            assert (await post(client, url)).status_code == 200
            assert peer.connections == 2
            monkeypatch.setattr(transport_module, "KEEPALIVE_EXPIRY_S", 0.0)
            await asyncio.sleep(0.01)
            assert (await post(client, url)).status_code == 200
            assert peer.connections == 3

    asyncio.run(go())


def test_timeouts_and_refused_connections_are_httpx_errors() -> None:
    """A receiver that never answers is a ReadTimeout; a closed port a ConnectError: the relay
    records them as failed attempts with the exception's name."""

    async def go() -> None:
        async with receiver(lambda _head: None) as (_peer, url):
            transport = KeptConnections()
            async with httpx.AsyncClient(transport=transport, timeout=0.2) as client:
                with pytest.raises(httpx.ReadTimeout):
                    await post(client, url)
        async with httpx.AsyncClient(transport=KeptConnections(), timeout=2) as client:
            with pytest.raises(httpx.ConnectError):
                await post(client, url)  # the server is gone

    asyncio.run(go())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_to_a_pinned_address_checks_the_certificate_against_the_name(
    tmp_path: Path,
) -> None:
    """Connected to 127.0.0.1, the TLS server name and the certificate check use the
    ``sni_hostname`` extension (the webhook's own host): its certificate is accepted, and the
    same certificate presented for another name is refused."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=hooks.example.test"
    command += " -addext subjectAltName=DNS:hooks.example.test"
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))

    async def go() -> None:
        peer = Receiver(ok)
        server = await asyncio.start_server(peer.handle, "127.0.0.1", 0, ssl=server_tls)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
        try:
            async with httpx.AsyncClient(transport=KeptConnections(client_tls)) as client:
                good = {"sni_hostname": "hooks.example.test"}
                for _ in range(2):
                    resp = await client.post(url, content=b"{}", extensions=good)
                    assert resp.status_code == 200
                assert peer.connections == 1  # kept across requests over TLS too
                with pytest.raises(httpx.ConnectError):
                    await client.post(url, content=b"{}", extensions={"sni_hostname": "evil.test"})
        finally:
            server.close()
            for writer in peer.writers:
                writer.close()

    asyncio.run(go())
