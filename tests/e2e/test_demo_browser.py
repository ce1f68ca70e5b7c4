"""``doorstep demo`` as a newcomer runs it: a subprocess on a free port with a small, fast day.
Its printed tracking page shows the driver's marker moving without a reload, and its printed
console link opens the dispatch map with the vehicles on it. The subprocess is always stopped
(Ctrl-C, then a kill), within bounds."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

READY_LINE = "Ctrl-C stops the demo."
START_TIMEOUT_S = 180  # booking, planning and serving a small day on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _doorstep() -> str:
    script = Path(sys.executable).parent / "doorstep"
    assert script.exists(), f"{script} missing: install the package (make install)"
    return str(script)


class DemoProcess:
    """The demo's subprocess with its output collected by a thread, line by line."""

    def __init__(self, args: list[str], tmp: Path) -> None:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": str(tmp),
            "XDG_DATA_HOME": str(tmp / "data"),
        }
        env = {k: v for k, v in env.items() if not k.startswith("DOORSTEP_")}
        self.proc = subprocess.Popen(
            [_doorstep(), "demo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=tmp,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)
                if text in self.output:
                    return
                pytest.fail(f"doorstep demo exited ({self.proc.returncode}):\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"doorstep demo did not print {text!r} in {timeout} s:\n{self.output}")
            time.sleep(0.2)

    def stop(self) -> int:
        """Ctrl-C, as a person would; killed if it has not stopped within 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._reader.join(timeout=5)
                pytest.fail(f"doorstep demo did not stop on Ctrl-C:\n{self.output}")
        self._reader.join(timeout=5)
        return self.proc.returncode


def _no_tiles(route: Route) -> None:
    route.abort()


def _new_page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.route("https://tile.openstreetmap.org/**", _no_tiles)
    return page


@pytest.mark.browser
def test_demo_tracking_page_driver_moves_and_console_map_shows_vehicles(
    browser: Browser, tmp_path: Path
) -> None:
    """From the printed links: a tracking page whose driver marker appears and then moves by
    itself, and a one-click console sign-in that lands on the dispatch map with vehicles."""
    port = _free_port()
    demo = DemoProcess(
        ["--orders", "12", "--drivers", "2", "--speed", "60", "--seed", "3", "--port", str(port)],
        tmp_path,
    )
    try:
        demo.wait_for(READY_LINE, START_TIMEOUT_S)
        base = f"http://127.0.0.1:{port}"
        tracking = re.findall(rf"{re.escape(base)}/t/\S+", demo.output)
        console = re.findall(rf"{re.escape(base)}/console/login/\S+", demo.output)
        assert len(tracking) == 3 and len(console) == 1, demo.output
        assert f"{base}/docs" in demo.output and f"{base}/driver/login/" in demo.output

        track = _new_page(browser)
        track.goto(tracking[0])  # the early stop of the first route out
        track.evaluate("window.__notReloaded = true")
        track.wait_for_selector("#track-map[data-driver-lat]", state="attached", timeout=90_000)
        first = track.eval_on_selector(
            "#track-map", "m => [m.dataset.driverLat, m.dataset.driverLon]"
        )
        track.wait_for_function(
            "([lat, lon]) => { const m = document.querySelector('#track-map');"
            " return m.dataset.driverLat && (m.dataset.driverLat !== lat"
            " || m.dataset.driverLon !== lon); }",
            arg=first,
            timeout=60_000,
        )
        assert track.locator(".track-driver-marker").count() == 1
        assert track.evaluate("window.__notReloaded") is True

        dispatch = _new_page(browser)
        dispatch.goto(console[0])
        dispatch.wait_for_url(f"{base}/console/dispatch**")
        dispatch.wait_for_selector("#dispatch-map.is-ready")
        dispatch.wait_for_selector(".leaflet-marker-pane .vehicle-marker", timeout=60_000)
        assert dispatch.locator(".leaflet-marker-pane .vehicle-marker").count() >= 1
    finally:
        code = demo.stop()
    assert code == 0, demo.output
    assert "Stopped. The day's data is in" in demo.output
