"""The worker's runner: runs due jobs, survives a failing job, stops on request."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from doorstep.clock import FrozenClock
from doorstep.db.engine import make_engine
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.worker import Job, Runner


def _runtime(tmp_path: Path) -> Runtime:
    settings = Settings(data_dir=tmp_path, secret_key="x" * 40, worker_poll_s=0.01)
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    return Runtime(settings, FrozenClock(datetime(2026, 11, 25, tzinfo=UTC)), engine)


def test_a_failing_job_is_counted_and_the_others_keep_running(tmp_path: Path) -> None:
    """One job raising does not stop the runner: it is counted and the next job still runs."""
    done: list[str] = []
    stop = threading.Event()

    def boom(_rt: Runtime) -> int:
        raise RuntimeError("broken job")

    def work(_rt: Runtime) -> int:
        done.append("work")
        if len(done) >= 3:
            stop.set()
        return 1

    runner = Runner(
        _runtime(tmp_path),
        [Job("boom", 0.01, boom), Job("work", 0.01, work)],
        stop_event=stop,
    )
    stats = runner.run_forever()
    assert len(done) == 3
    assert stats.errors["boom"] >= 1
    assert stats.work["work"] == 3


def test_a_busy_job_runs_again_at_once_and_stop_ends_the_loop(tmp_path: Path) -> None:
    """A job that did a full batch runs again without waiting for its long interval."""
    batches = [5, 5, 0]
    calls: list[int] = []
    runner: Runner

    def relay(_rt: Runtime) -> int:
        calls.append(1)
        if len(calls) == len(batches):
            runner.stop()
        return batches[len(calls) - 1]

    runner = Runner(_runtime(tmp_path), [Job("relay", 3600, relay, busy_threshold=1)])
    thread = runner.start_thread()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(calls) == 3  # three runs despite a one-hour interval
    assert runner.stats.total_work() == 10
