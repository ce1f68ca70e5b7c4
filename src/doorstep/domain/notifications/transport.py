"""An httpx transport for webhook deliveries: HTTP/1.1 with ``h11`` on asyncio streams, with
connections kept per origin.

The relay sends many small POSTs to few receivers. httpx's default transport (httpcore on
anyio) cost 1.5 ms of CPU per request on the benchmark machine, of which about 0.2 ms is
httpx itself; the rest is the pool's bookkeeping, anyio's stream and lock wrappers and a
failed ``import sniffio`` per request. This transport keeps httpx's client, models and mock
transport for tests, and h11 (the protocol library httpcore uses) for framing and keep-alive
decisions; only connection keeping is ours. ADR 0011 has the figures.

What it honours: ``sni_hostname`` (TLS server name and certificate check against the name
while connecting to a pinned address) and ``timeout`` (connect, read, write) request
extensions; redirects are httpx's business (the relay never follows them). A connection is
reused only if it finished its last exchange cleanly, has not been idle longer than
:data:`KEEPALIVE_EXPIRY_S` and the peer has not closed it. Response bodies are read up to
:data:`MAX_BODY_BYTES` (the relay keeps an excerpt); a longer one is cut and its connection
closed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import h11
import httpx

KEEPALIVE_EXPIRY_S = 5.0
MAX_BODY_BYTES = 64 * 1024
MAX_IDLE_PER_ORIGIN = 32
_READ_CHUNK = 64 * 1024

Origin = tuple[str, str, int, str | None]


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    protocol: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    idle_since: float = 0.0

    def reusable(self) -> bool:
        return (
            time.monotonic() - self.idle_since <= KEEPALIVE_EXPIRY_S
            and not self.writer.is_closing()
            and not self.reader.at_eof()
        )

    def close(self) -> None:
        self.writer.close()


def _seconds(timeout: dict[str, Any], key: str) -> float | None:
    value = timeout.get(key)
    return float(value) if value is not None else None


class KeptConnections(httpx.AsyncBaseTransport):
    """HTTP/1.1 connections kept per origin (scheme, host, port, TLS server name)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.reusable():
                return conn
            conn.close()
        return None

    def _keep(self, origin: Origin, conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _open(
        self, request: httpx.Request, origin: Origin, timeout: dict[str, Any]
    ) -> _Connection:
        scheme, host, port, sni = origin
        tls = self._ssl() if scheme == "https" else None
        try:
            async with asyncio.timeout(_seconds(timeout, "connect")):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=(sni or host) if tls else None
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port}", request=request) from exc
        except OSError as exc:  # ssl.SSLError is one
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        return _Connection(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        port = url.port or (443 if scheme == "https" else 80)
        sni = request.extensions.get("sni_hostname")
        origin: Origin = (scheme, url.host, port, sni if scheme == "https" else None)
        timeout: dict[str, Any] = request.extensions.get("timeout") or {}
        body = await request.aread()
        conn = self._take(origin) or await self._open(request, origin, timeout)
        try:
            response, reuse = await self._exchange(conn, request, body, timeout)
        except BaseException:
            conn.close()
            raise
        if reuse:
            conn.protocol.start_next_cycle()
            self._keep(origin, conn)
        else:
            conn.close()
        return response

    async def _exchange(
        self, conn: _Connection, request: httpx.Request, body: bytes, timeout: dict[str, Any]
    ) -> tuple[httpx.Response, bool]:
        proto = conn.protocol
        head = h11.Request(
            method=request.method, target=request.url.raw_path, headers=request.headers.raw
        )
        try:
            data = proto.send(head) or b""
            if body:
                data += proto.send(h11.Data(data=body)) or b""
            data += proto.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        try:
            conn.writer.write(data)
            async with asyncio.timeout(_seconds(timeout, "write")):
                await conn.writer.drain()
        except TimeoutError as exc:
            raise httpx.WriteTimeout("sending the request", request=request) from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from exc

        read_timeout = _seconds(timeout, "read")
        status: h11.Response | None = None
        content = bytearray()
        complete = False
        while True:
            try:
                event = proto.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=request) from exc
            if event is h11.NEED_DATA:
                try:
                    async with asyncio.timeout(read_timeout):
                        chunk = await conn.reader.read(_READ_CHUNK)
                except TimeoutError as exc:
                    raise httpx.ReadTimeout("waiting for the answer", request=request) from exc
                except OSError as exc:
                    raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
                proto.receive_data(chunk)  # b"" is the end of the stream
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                status = event
            elif isinstance(event, h11.Data):
                content += event.data
                if len(content) > MAX_BODY_BYTES:
                    del content[MAX_BODY_BYTES:]
                    break  # cut: the connection is closed, not reused
            elif isinstance(event, h11.EndOfMessage):
                complete = True
                break
            elif isinstance(event, h11.ConnectionClosed):
                if status is None:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection without answering", request=request
                    )
                break
        assert status is not None
        response = httpx.Response(
            status.status_code,
            headers=list(status.headers),
            content=bytes(content),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": status.reason},
        )
        reuse = complete and proto.our_state is h11.DONE and proto.their_state is h11.DONE
        return response, reuse

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
