"""The tracking pages of ``doorstep bench live``, in a process of their own.

Kept apart from :mod:`doorstep.bench.live` so a client process (started with ``spawn``) imports
nothing but the standard library: its CPU goes to reading streams. Each page is a raw HTTP/1.1
``GET /t/{token}/events`` on an asyncio socket; a ``position`` message's latitude says which fix
it is (``START_LAT + k * STEP_DEG``, rounded to 3 decimals as pages get it), and its arrival is
stamped with ``time.monotonic_ns()`` (``CLOCK_MONOTONIC``: the same clock in every process).

The conversation with the bench, over a pipe: the client sends ``("ready", n)`` once every page
has its first snapshot (or ``("failed", why)``); the bench sends ``("collect", deadline_ns)``
after its last fix; the client answers ``("arrivals", rows)`` once every page has every fix or
the deadline has passed: ``rows[page][k]`` is the arrival of fix ``k`` (0: never).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

START_LAT = 43.700
STEP_DEG = 0.001
# How sse-starlette writes a position message (json.dumps puts "lat" first) and a snapshot.
POSITION = b'event: position\r\ndata: {"lat": '
SNAPSHOT = b"event: snapshot\r\n"
CONNECT_WAVE = 50  # pages opened at once, then a short pause (pages open over time)


async def _watch(
    host: str, port: int, path: str, row: list[int], ready: Callable[[], None]
) -> None:
    """One tracking page: the request, the headers, then the stream as it comes, scanned for
    ``position`` messages (a byte search per read, not a parse per line: the clients' CPU is
    the server's competition on a small machine)."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
            f"Accept-Language: en\r\n\r\n".encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"{path}: {status!r}")
        while await reader.readline() not in (b"\r\n", b""):
            pass  # headers
        buffer = b""
        waiting = True  # for the first snapshot
        keep = len(POSITION) + 32  # a message cut between two reads is completed by the next
        while data := await reader.read(1 << 16):
            now = time.monotonic_ns()
            buffer += data
            if waiting and SNAPSHOT in buffer:
                waiting = False
                ready()
            done = 0
            while (start := buffer.find(POSITION, done)) >= 0:
                end = buffer.find(b",", start + len(POSITION))
                if end < 0:
                    break
                fix = round((float(buffer[start + len(POSITION) : end]) - START_LAT) / STEP_DEG)
                if 0 < fix < len(row) and not row[fix]:
                    row[fix] = now
                done = end
            buffer = buffer[max(done, len(buffer) - keep) :]
    finally:
        writer.close()


async def _run(conn: Connection, host: str, port: int, paths: list[str], fixes: int) -> None:
    loop = asyncio.get_running_loop()
    rows = [[0] * (fixes + 1) for _ in paths]
    seen: set[int] = set()
    all_ready = asyncio.Event()

    def ready_for(index: int) -> Callable[[], None]:
        def ready() -> None:
            seen.add(index)
            if len(seen) == len(paths):
                all_ready.set()

        return ready

    tasks: list[asyncio.Task[None]] = []
    for i, path in enumerate(paths):
        tasks.append(asyncio.create_task(_watch(host, port, path, rows[i], ready_for(i))))
        if i % CONNECT_WAVE == CONNECT_WAVE - 1:
            await asyncio.sleep(0.05)
    waiter = asyncio.create_task(all_ready.wait())
    done, _ = await asyncio.wait([waiter, *tasks], timeout=120, return_when="FIRST_COMPLETED")
    failed = [t for t in tasks if t.done()]
    if waiter not in done or failed:
        errors = [repr(t.exception()) for t in failed if t.exception() is not None][:3]
        conn.send(("failed", f"{len(seen)}/{len(paths)} pages connected; {errors}"))
    else:
        conn.send(("ready", len(paths)))
        _, deadline_ns = await loop.run_in_executor(None, conn.recv)
        while time.monotonic_ns() < deadline_ns and not all(all(row[1:]) for row in rows):
            await asyncio.sleep(0.02)
    for task in [waiter, *tasks]:
        task.cancel()
    await asyncio.gather(waiter, *tasks, return_exceptions=True)
    conn.send(("arrivals", rows))


def client_main(conn: Connection, host: str, port: int, paths: list[str], fixes: int) -> None:
    """Entry point of a client process: hold ``paths`` open and report arrivals."""
    asyncio.run(_run(conn, host, port, paths, fixes))
