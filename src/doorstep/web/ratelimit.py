"""A per-client token bucket for public pages (the tracking links): ``rate`` requests a minute
with bursts up to ``rate``, then ``429 Too Many Requests`` with ``Retry-After``.

It measures wall-clock elapsed time (``time.monotonic``), not business time: it protects the
server, whatever the simulated clock says. State is per process and capped in size; with
several processes each keeps its own buckets.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        rate_per_minute: int,
        *,
        max_clients: int = 50_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(rate_per_minute)
        self.refill_per_s = rate_per_minute / 60.0
        self.max_clients = max_clients
        self._monotonic = monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> int:
        """Take one request for ``client``: 0 if allowed, else the seconds to wait."""
        now = self._monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill_per_s)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                wait = 0
            else:
                self._buckets[client] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / self.refill_per_s))
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait
