"""``doorstep bench live`` runs at a small size and reports every position at every page."""

from __future__ import annotations

from doorstep.bench.live import run_live_bench
from tests.integration.test_live_fanout import REDIS_URL, _redis_or_skip


def test_bench_live_delivers_every_position_to_every_page() -> None:
    """Three pages, two fixes: six deliveries, none missed, latencies measured."""
    result = run_live_bench(pages=3, positions=2)
    assert (result.deliveries, result.missed) == (6, 0)
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms


def test_bench_live_through_redis() -> None:
    """The same through Redis pub/sub."""
    _redis_or_skip()
    result = run_live_bench(pages=2, positions=2, redis_url=REDIS_URL)
    assert (result.bus, result.deliveries, result.missed) == ("redis", 4, 0)


def test_bench_live_spreads_pages_over_orders_and_routes() -> None:
    """Six pages on six orders: two routes of five stops and one; every page gets each fix of
    its own route, from two client processes."""
    result = run_live_bench(pages=6, positions=2, orders=6, clients=2)
    assert (result.orders, result.routes, result.client_processes) == (6, 2, 2)
    assert (result.deliveries, result.missed) == (12, 0)
    assert 0 <= result.spread_p99_ms <= result.max_ms
