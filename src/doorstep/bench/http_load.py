"""A closed-loop HTTP load generator for a server on this machine.

``concurrency`` workers share one :class:`httpx.AsyncClient` (keep-alive, one connection each)
and send exactly ``requests`` requests between them, each worker waiting for its answer before
sending the next. Latency is measured per request with a monotonic clock; throughput is
completed requests over the wall time of the measured phase. A short warm-up (not counted)
opens the connections first.

Only loopback addresses are accepted, and the client ignores proxy settings from the
environment, so a benchmark can never send its traffic anywhere else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = [
    "MAX_CONCURRENCY",
    "MAX_REQUESTS",
    "LoadResult",
    "Send",
    "ensure_loopback",
    "loopback_client",
    "percentile",
    "run_load",
]

MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 512

Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]
"""Sends request number ``i`` (0-based, distinct across workers) and returns the answer."""


def ensure_loopback(url: str) -> None:
    """Refuse any URL whose host is not this machine's loopback interface."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"benchmarks only send traffic to loopback addresses, not {host!r}")


def loopback_client(
    base_url: str,
    concurrency: int,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> httpx.AsyncClient:
    """An async client for ``base_url`` (loopback only) with one connection per worker."""
    ensure_loopback(base_url)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        limits=limits,
        timeout=timeout_s,
        trust_env=False,
        follow_redirects=False,
    )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def _round(value: float, digits: int) -> float | None:
    return None if math.isnan(value) else round(value, digits)


@dataclass(frozen=True)
class LoadResult:
    """What one measured phase did: counts, wall time and sorted per-request latencies."""

    name: str
    concurrency: int
    requests: int
    errors: int
    elapsed_s: float
    latencies_s: tuple[float, ...]
    first_error: str | None = None
    client_cpu_s: float = math.nan  # this process's CPU time during the measured phase
    server_cpu_s: float = math.nan  # the server's, when a probe was given

    @property
    def ok(self) -> int:
        return self.requests - self.errors

    @property
    def rps(self) -> float:
        """Completed requests per second (errors included: they took the server's time too)."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else math.nan

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_s, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_s, 99) * 1000

    @property
    def mean_ms(self) -> float:
        if not self.latencies_s:
            return math.nan
        return sum(self.latencies_s) / len(self.latencies_s) * 1000

    @property
    def max_ms(self) -> float:
        return self.latencies_s[-1] * 1000 if self.latencies_s else math.nan

    @property
    def server_cpu_ms_per_request(self) -> float:
        """Server CPU per request: steadier than req/s on a machine shared with others."""
        return self.server_cpu_s / self.requests * 1000

    @property
    def client_cpu_share(self) -> float:
        """The load generator's CPU over wall time (near 1.0: the client was the limit)."""
        return self.client_cpu_s / self.elapsed_s if self.elapsed_s > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 4),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "mean_ms": round(self.mean_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "server_cpu_ms_per_request": _round(self.server_cpu_ms_per_request, 3),
            "client_cpu_share": _round(self.client_cpu_share, 3),
            "first_error": self.first_error,
        }


async def run_load(
    client: httpx.AsyncClient,
    name: str,
    send: Send,
    *,
    requests: int,
    concurrency: int,
    expect_status: Collection[int] = (200,),
    warmup: int = 0,
    first_index: int = 0,
    server_cpu: Callable[[], float] | None = None,
) -> LoadResult:
    """Send ``warmup`` unmeasured requests, then ``requests`` measured ones, with at most
    ``concurrency`` in flight. Request numbers run from ``first_index`` upwards (warm-up
    first), so a ``send`` that builds distinct bodies never repeats one.

    An answer whose status is not in ``expect_status``, or a transport error, counts as an
    error; the first one is kept as a sample for the report. ``server_cpu``, if given,
    returns the server's CPU seconds so far; it is read around the measured phase."""
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be between 1 and {MAX_REQUESTS}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
    ensure_loopback(str(client.base_url))
    if warmup > 0:
        await _phase(client, send, first_index, warmup, concurrency, expect_status)
    server_before = server_cpu() if server_cpu is not None else math.nan
    client_before = time.process_time()
    start = time.perf_counter()
    latencies, errors, first_error = await _phase(
        client, send, first_index + warmup, requests, concurrency, expect_status
    )
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - client_before
    server_used = server_cpu() - server_before if server_cpu is not None else math.nan
    return LoadResult(
        name=name,
        concurrency=concurrency,
        requests=requests,
        errors=errors,
        elapsed_s=elapsed,
        latencies_s=tuple(sorted(latencies)),
        first_error=first_error,
        client_cpu_s=client_cpu,
        server_cpu_s=server_used,
    )


async def _phase(
    client: httpx.AsyncClient,
    send: Send,
    first: int,
    count: int,
    concurrency: int,
    expect_status: Collection[int],
) -> tuple[list[float], int, str | None]:
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    next_index = first
    end = first + count

    async def worker() -> None:
        nonlocal next_index, errors, first_error
        while next_index < end:
            i = next_index
            next_index += 1  # no await in between: asyncio cannot interleave here
            began = time.perf_counter()
            problem: str | None = None
            try:
                response = await send(client, i)
                if response.status_code not in expect_status:
                    problem = f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            latencies.append(time.perf_counter() - began)
            if problem is not None:
                errors += 1
                first_error = first_error or problem

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return latencies, errors, first_error
