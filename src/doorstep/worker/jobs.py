"""The registry of jobs. A job is a name, an interval and ``run(runtime) -> int`` (the units of
work it did; a job that did a full batch is run again at once instead of after its interval).

Other parts of Doorstep add their periodic work here: a domain function plus a
``run_<job>(runtime)`` wrapper, listed in :data:`JOBS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from doorstep.domain.notifications.relay import run_outbox
from doorstep.domain.notifications.webhook_health import run_webhook_health
from doorstep.domain.orders.geocoding_jobs import run_geocode_pending
from doorstep.domain.sign_in_purge import run_purge_sign_ins
from doorstep.domain.slots.reservations import run_expire_reservations
from doorstep.domain.slots.selfservice import run_release_holds
from doorstep.domain.tracking.eta import run_refresh_etas
from doorstep.domain.tracking.ingest import run_prune_positions
from doorstep.runtime import Runtime


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[Runtime], int]
    # A run that did at least this much work is followed at once by another one.
    busy_threshold: int | None = None


JOBS: list[Job] = [
    Job("outbox", interval_s=1.0, run=run_outbox, busy_threshold=1),
    Job("webhook_health", interval_s=300.0, run=run_webhook_health),
    # ETAs of active routes that have new positions (the driver app reports every 10 s).
    Job("refresh_etas", interval_s=5.0, run=run_refresh_etas),
    Job("expire_reservations", interval_s=60.0, run=run_expire_reservations),
    Job("release_holds", interval_s=300.0, run=run_release_holds),
    # Orders a CSV import queued for a rate-limited geocoding server (20 per run).
    Job("geocode_pending", interval_s=5.0, run=run_geocode_pending, busy_threshold=20),
    Job("prune_positions", interval_s=3600.0, run=run_prune_positions),
    # Console sign-in links and driver sign-ins, a day after they expired.
    Job("purge_sign_ins", interval_s=3600.0, run=run_purge_sign_ins),
]


def registered_jobs(names: Iterable[str] | None = None) -> list[Job]:
    """The registered jobs, or only those named (unknown names raise ``KeyError``)."""
    if names is None:
        return list(JOBS)
    by_name = {job.name: job for job in JOBS}
    return [by_name[name] for name in names]
