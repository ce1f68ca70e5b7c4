"""``doorstep bench notify`` end to end at a tiny size on the embedded SQLite database: real
worker processes deliver every message to the local SMTP server and webhook receiver, and the
figures include the CPU per message of the workers and, apart, of the peers' process.
Figures only: no time or target is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doorstep.cli import app


def test_bench_notify_delivers_everything_and_prints_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOORSTEP_DATA_DIR", str(tmp_path / "data"))
    args = ["bench", "notify", "--orders", "15", "--workers", "1", "--no-kill"]
    args += ["--database-url", f"sqlite:///{tmp_path / 'bench.sqlite3'}", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    [run] = figures["runs"]
    assert run["workers"] == 1 and run["messages"] == 30
    assert run["received"] == 30  # each order's e-mail and webhook, by their ids
    assert run["worker_cpu_ms_per_msg"] > 0
    assert run["peer_cpu_ms_per_msg"] > 0  # the receivers' own process
    assert run["db_cpu_ms_per_msg"] is None  # SQLite works inside the workers
    assert run["worker_startup_cpu_s"] > 0  # measured apart from the messages
    assert figures["kill"] is None
