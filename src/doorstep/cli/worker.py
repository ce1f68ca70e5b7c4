"""``doorstep worker``: the background jobs in their own process, or in several."""

from __future__ import annotations

import multiprocessing
import signal
from types import FrameType

import typer
from rich.console import Console

from doorstep.db.migrate import upgrade
from doorstep.observability import configure_logging
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.worker import Runner, registered_jobs

console = Console()


def _run(job_names: list[str] | None, once: bool) -> int:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    runtime = Runtime.from_settings(settings)
    try:
        runner = Runner(runtime, registered_jobs(job_names))
        if once:
            return runner.run_due()
        runner.install_signal_handlers()
        stats = runner.run_forever()
        return stats.total_work()
    finally:
        runtime.close()


def _child(job_names: list[str] | None) -> None:
    _run(job_names, once=False)


def worker(
    processes: int = typer.Option(1, min=1, max=64, help="Worker processes to run"),
    jobs: str | None = typer.Option(None, help="Comma-separated job names [default: all]"),
    once: bool = typer.Option(False, "--once", help="Run every job once and exit"),
) -> None:
    """Run background work (outbox relay, webhooks, timers) until stopped (SIGTERM/Ctrl-C)."""
    names = [n.strip() for n in jobs.split(",") if n.strip()] if jobs else None
    try:
        chosen = registered_jobs(names)
    except KeyError as exc:
        console.print(f"[red]error:[/] no job named {exc.args[0]}")
        raise typer.Exit(2) from exc
    settings = Settings()
    runtime = Runtime.from_settings(settings)
    upgrade(runtime.engine)
    runtime.close()
    if once:
        done = _run(names, once=True)
        console.print(f"worker: {done} units of work")
        return
    console.print(f"worker: {processes} process(es), jobs {', '.join(j.name for j in chosen)}")
    if processes == 1:
        _run(names, once=False)
        return
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=_child, args=(names,), daemon=False) for _ in range(processes)]
    for child in children:
        child.start()

    def _forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.is_alive() and child.pid is not None:
                child.terminate()

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    for child in children:
        child.join()
