"""The live bus: what happened, pushed to whoever is watching (tracking pages, the dispatch map).

* :mod:`~doorstep.live.bus`: :class:`LiveBus` (``publish(channel, message)``,
  ``subscribe(channels)``), in-process by default, Redis pub/sub with ``DOORSTEP_REDIS_URL``.
* :mod:`~doorstep.live.hooks`: a session hook that publishes every new
  :class:`~doorstep.domain.orders.models.DeliveryEvent` and
  :class:`~doorstep.domain.tracking.models.Position` after its transaction commits;
  :func:`publish_taken_positions`, a driver's new current fix as soon as the ingest takes it.
* :mod:`~doorstep.live.fanout`: one shared feed per watched thing (a tracking link, a
  merchant's map) per process, and a bounded mailbox per client that keeps the newest state.
"""

from doorstep.live.bus import InProcessBus, LiveBus, RedisBus, Subscription, make_bus
from doorstep.live.hooks import (
    install_publisher,
    position_message,
    publish_after_commit,
    publish_stored_positions,
    publish_taken_positions,
)

__all__ = [
    "InProcessBus",
    "LiveBus",
    "RedisBus",
    "Subscription",
    "install_publisher",
    "make_bus",
    "position_message",
    "publish_after_commit",
    "publish_stored_positions",
    "publish_taken_positions",
]
