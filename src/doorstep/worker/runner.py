"""The loop that runs due jobs until told to stop.

Business time (when a message is due, when a lease ends) comes from ``runtime.clock`` inside
the jobs; the runner itself schedules with the monotonic wall clock, because it decides how long
this process sleeps, not what time it is for the business. A job that raises is logged and
counted, and runs again after its interval: the runner never dies of a job's error.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from doorstep.domain.notifications.metrics import JOB_ERRORS, JOB_RUNS
from doorstep.runtime import Runtime
from doorstep.worker.jobs import Job

log = logging.getLogger("doorstep.worker")


@dataclass
class RunnerStats:
    runs: dict[str, int] = field(default_factory=dict)
    work: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def total_work(self) -> int:
        return sum(self.work.values())


class Runner:
    """Runs ``jobs`` on ``runtime`` until :meth:`stop` (or SIGTERM/SIGINT when installed)."""

    def __init__(
        self,
        runtime: Runtime,
        jobs: Sequence[Job],
        *,
        stop_event: threading.Event | None = None,
        max_sleep_s: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.jobs = list(jobs)
        self.stop_event = stop_event or threading.Event()
        self.stats = RunnerStats()
        self._max_sleep = max_sleep_s or runtime.settings.worker_poll_s
        self._next: dict[str, float] = {job.name: 0.0 for job in self.jobs}

    def stop(self) -> None:
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        """Stop cleanly on SIGTERM and SIGINT (main thread only)."""

        def _handler(signum: int, _frame: FrameType | None) -> None:
            log.info("worker stopping on signal %s", signum)
            self.stop()

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)

    def run_due(self) -> int:
        """Run every job that is due now, once; return the work done."""
        done = 0
        for job in self.jobs:
            if self.stop_event.is_set():
                break
            if time.monotonic() < self._next[job.name]:
                continue
            done += self._run_one(job)
        return done

    def _run_one(self, job: Job) -> int:
        self.stats.runs[job.name] = self.stats.runs.get(job.name, 0) + 1
        JOB_RUNS.labels(job.name).inc()
        try:
            work = job.run(self.runtime)
        except Exception:
            self.stats.errors[job.name] = self.stats.errors.get(job.name, 0) + 1
            JOB_ERRORS.labels(job.name).inc()
            log.exception("job %s failed; it runs again in %.0f s", job.name, job.interval_s)
            self._next[job.name] = time.monotonic() + job.interval_s
            return 0
        self.stats.work[job.name] = self.stats.work.get(job.name, 0) + work
        busy = job.busy_threshold is not None and work >= job.busy_threshold
        self._next[job.name] = 0.0 if busy else time.monotonic() + job.interval_s
        return work

    def run_forever(self) -> RunnerStats:
        """Loop until stopped; sleeps (interruptibly) until the next job is due."""
        log.info("worker started with jobs %s", ", ".join(j.name for j in self.jobs))
        while not self.stop_event.is_set():
            self.run_due()
            if not self._next:
                break
            wait = min(self._next.values()) - time.monotonic()
            if wait > 0:
                self.stop_event.wait(min(wait, self._max_sleep))
        from doorstep.domain.notifications.relay import close_sender

        close_sender()  # this thread's SMTP and HTTP connections
        log.info("worker stopped")
        return self.stats

    def start_thread(self) -> threading.Thread:
        """Run in a daemon thread (in-process under ``doorstep serve``)."""
        thread = threading.Thread(target=self.run_forever, name="doorstep-worker", daemon=True)
        thread.start()
        return thread
