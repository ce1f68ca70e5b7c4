"""Throw-away databases and a real ``doorstep serve`` in a subprocess, for benchmarks.

* :func:`scratch_database` yields the URL of an empty database that disappears afterwards:
  a SQLite file in a temporary directory, or a ``doorstep_bench_<random>`` database created on
  a PostgreSQL server and dropped (``WITH (FORCE)``) at the end.
* :class:`ServerProcess` runs ``doorstep serve --host 127.0.0.1`` with its own data directory
  and database, waits until ``/readyz`` answers, and stops exactly that process on exit.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from doorstep.db.engine import make_engine

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "ServerProcess",
    "free_port",
    "is_postgres",
    "scratch_database",
]

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_READY_TIMEOUT_S = 60.0
_CPUCLOCK_SCHED = 2  # Linux: a process CPU clock counting scheduler run time, in ns
_STOP_TIMEOUT_S = 15.0


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "postgresql+"))


def _sqlalchemy_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@contextmanager
def scratch_database(url: str | None, workdir: Path) -> Iterator[str]:
    """An empty database for one benchmark run, removed afterwards.

    ``url`` ``None`` means a SQLite file in ``workdir``; a ``sqlite:///PATH`` URL must name a
    file that does not exist yet (the benchmark writes thousands of rows and never touches
    existing data); a PostgreSQL URL names the server, on which a fresh database is created
    (through the URL's own database, usually ``postgres``) and dropped at the end."""
    if url is None:
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    if not is_postgres(url):
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or not parsed.database:
            raise ValueError(f"unsupported database URL {parsed.render_as_string()}")
        if parsed.database != ":memory:" and Path(parsed.database).exists():
            raise ValueError(f"{parsed.database} exists; give the path of a new file")
        yield url
        return
    admin_url = _sqlalchemy_url(url)
    name = f"doorstep_bench_{secrets.token_hex(4)}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process could still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """``doorstep serve`` on 127.0.0.1 in a subprocess, as a context manager.

    The server gets a fresh data directory under ``workdir``, the given database,
    ``DOORSTEP_LOG_LEVEL=WARNING`` and any other ``env`` given; its output goes to
    ``workdir/server.log``, whose tail is shown if it fails to start."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        port: int = 0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.extra_env = dict(env or {})
        self.workdir = workdir
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
        env.update(
            DOORSTEP_DATA_DIR=str(self.workdir / "data"),
            DOORSTEP_DATABASE_URL=self.database_url,
            DOORSTEP_BASE_URL=self.base_url,
            DOORSTEP_LOG_LEVEL="WARNING",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        command = [
            sys.executable,
            "-c",
            "from doorstep.cli import main; main()",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command,
                env=self._environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise RuntimeError(f"the server exited at start-up:\n{self.log_tail()}")
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"the server was not ready in {_READY_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far, all its threads (those that have
        ended too); NaN where neither clock below is available or the process is gone.

        Read from the process's CPU-time clock, which counts in nanoseconds (Linux: a
        negative clock id names another process's clock, as glibc's ``clock_getcpuclockid``
        builds it), else from ``/proc/PID/stat``, which counts in ticks of 10 ms: too coarse
        for a short run of cheap requests (30 health checks read as 0 ms)."""
        if self._process is None:
            return math.nan
        try:
            return time.clock_gettime((~self._process.pid << 3) | _CPUCLOCK_SCHED)
        except (OSError, OverflowError):
            pass
        try:
            stat = Path(f"/proc/{self._process.pid}/stat").read_text()
        except OSError:
            return math.nan
        # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        fields = stat.rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Ask the server to finish (SIGTERM, uvicorn's graceful shutdown), then insist."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=_STOP_TIMEOUT_S)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def scratch_workdir() -> Iterator[Path]:
    """A temporary directory for one run's data directory, SQLite file and server log."""
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as name:
        yield Path(name)
