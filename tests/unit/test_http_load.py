"""The load generator counts, times and refuses what it should, without a real server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from doorstep.bench.http_load import ensure_loopback, loopback_client, percentile, run_load


def test_percentile_interpolates_between_ranks() -> None:
    """p0/p50/p100 are min/median/max, and values in between are interpolated linearly."""
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile(values, 101)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:2"])
def test_loopback_urls_are_accepted(url: str) -> None:
    """Loopback hosts, by address or name, are accepted."""
    ensure_loopback(url)


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.1:8000", "http://0.0.0.0"])
def test_other_hosts_are_refused(url: str) -> None:
    """Anything that is not this machine's loopback interface is refused."""
    with pytest.raises(ValueError, match="loopback"):
        ensure_loopback(url)


def test_run_load_sends_exactly_the_requests_asked_with_distinct_numbers() -> None:
    """Warm-up plus measured requests are numbered once each, in-flight never exceeds the
    concurrency, and unexpected statuses count as errors with a sample kept."""
    seen: list[int] = []
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        i = int(request.url.path.rsplit("/", 1)[-1])
        return httpx.Response(500 if i % 10 == 0 else 200, text="boom")

    async def send(client: httpx.AsyncClient, i: int) -> httpx.Response:
        seen.append(i)
        return await client.get(f"/n/{i}")

    async def main() -> None:
        client = loopback_client("http://127.0.0.1:9", 4)
        client._transport = httpx.MockTransport(handler)
        async with client:
            result = await run_load(client, "t", send, requests=50, concurrency=4, warmup=5)
        assert sorted(seen) == list(range(55))
        assert result.requests == 50 and len(result.latencies_s) == 50
        assert result.errors == 5 and result.first_error is not None
        assert result.first_error.startswith("HTTP 500")
        assert result.rps > 0 and result.p50_ms <= result.p99_ms <= result.max_ms
        assert result.as_dict()["server_cpu_ms_per_request"] is None

    asyncio.run(main())
    assert peak <= 4


def test_run_load_refuses_unbounded_runs() -> None:
    """Request counts and concurrency are bounded."""

    async def send(client: httpx.AsyncClient, i: int) -> httpx.Response:
        raise AssertionError("never sent")

    async def main() -> None:
        async with loopback_client("http://127.0.0.1:9", 1) as client:
            with pytest.raises(ValueError):
                await run_load(client, "t", send, requests=0, concurrency=1)
            with pytest.raises(ValueError):
                await run_load(client, "t", send, requests=10, concurrency=10_000)

    asyncio.run(main())
