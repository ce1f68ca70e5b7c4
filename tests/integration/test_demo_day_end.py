"""``doorstep demo``'s runner at high speed: the day ends by itself, the display then says so
and shows the day's report card from Doorstep's analytics, the server keeps serving, and
stopping frees the port and keeps the database where it said."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from doorstep.simulator.demo import Demo, DemoOptions


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_day_ends_with_a_report_card_and_doorstep_keeps_serving(tmp_path: Path) -> None:
    """A 5-order day at 2400x ends on its own with a report card; /healthz still answers."""
    port = _free_port()
    options = DemoOptions(
        speed=2400,
        orders=5,
        drivers=1,
        seed=11,
        port=port,
        directory=tmp_path / "run",
        data_dir=tmp_path / "data",
    )
    (tmp_path / "run").mkdir()
    steps: list[str] = []
    with Demo(options, on_step=steps.append) as demo:
        links = demo.start()
        assert links.base_url == f"http://127.0.0.1:{port}" and len(links.tracking) >= 1
        assert steps[0] == "Starting Doorstep"
        deadline = time.monotonic() + 120
        snap = demo.snapshot()
        while snap.report is None and snap.error is None and time.monotonic() < deadline:
            time.sleep(0.5)
            snap = demo.snapshot()
        assert snap.error is None
        assert snap.day_over and snap.report is not None, snap
        assert snap.report.startswith("on time ") and "messages per delivery" in snap.report
        assert snap.progress.delivered >= 1 and snap.progress.out_for_delivery == 0
        assert httpx.get(f"{links.base_url}/healthz", timeout=10).status_code == 200
    assert (tmp_path / "run" / "doorstep.sqlite3").exists()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # the server let go of its port
