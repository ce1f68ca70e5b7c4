"""The README's API walk-through runs as written, so it cannot rot."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from doorstep.clock import SystemClock
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.slots.models import Reservation
from doorstep.runtime import Runtime
from doorstep.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands(heading: str) -> list[str]:
    """The ```bash blocks of one README section, in order."""
    text = README.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    section = text[start : end if end != -1 else None]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def make_recipe(target: str) -> tuple[list[str], list[str]]:
    """A Makefile target's prerequisites and recipe lines."""
    makefile = (README.parent / "Makefile").read_text()
    match = re.search(rf"^{target}:(.*)\n((?:\t.*\n)*)", makefile, flags=re.M)
    assert match, f"no '{target}' target in the Makefile"
    return match.group(1).split(), [line.strip() for line in match.group(2).splitlines()]


def test_readme_starts_with_the_two_commands() -> None:
    """A newcomer sees what Doorstep is, then the demo command first and the test command
    second; the demo's make target installs and ends in ``doorstep demo``, ``make run`` still
    serves, and CI runs the test command."""
    commands = [
        line.split("#")[0].strip() for line in readme_commands("# Doorstep")[0].splitlines()
    ]
    assert [c for c in commands if c] == ["make demo", "make test"]
    prerequisites, recipe = make_recipe("demo")
    assert "install" in prerequisites
    assert re.fullmatch(r"\$\(BIN\)/doorstep demo\b.*", recipe[-1]), recipe
    assert make_recipe("run")[1][-1] == "$(BIN)/doorstep serve"
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci


@pytest.fixture
def runtime(settings: Settings, engine: Engine) -> Runtime:
    """The README runs on the real clock, as its reader does (not the tests' frozen day)."""
    return Runtime(settings=settings, clock=SystemClock(), engine=engine)


def test_api_walkthrough_runs_against_a_live_server(
    live_server: str, runtime: Runtime, tmp_path: Path
) -> None:
    """Every command in 'Five minutes with the API' and its continuation in 'Delivery options'
    succeeds today against a server on the real clock, leaves what the text says, and writes no
    file (no API key) where it is run."""
    blocks = readme_commands("## Five minutes with the API")
    assert len(blocks) >= 5
    blocks += readme_commands("## Delivery options")
    assert len(blocks) >= 7
    text = "\n".join(blocks)
    assert not re.search(r"20\d\d-\d\d-\d\d", text), "a hard-coded date goes stale"
    checkout = tmp_path / "checkout"  # stands for the repository the reader is in
    checkout.mkdir()
    (checkout / ".venv").symlink_to(Path(sys.prefix))
    env = {
        **os.environ,
        "DOORSTEP": live_server,
        "DOORSTEP_DATABASE_URL": runtime.engine.url.render_as_string(hide_password=False),
        "DOORSTEP_DATA_DIR": str(runtime.settings.data_dir),
        "DOORSTEP_SECRET_KEY": runtime.settings.effective_secret_key,
    }
    script = "set -euo pipefail\n" + text
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert sorted(p.name for p in checkout.iterdir()) == [".venv"]
    assert not re.search(r"dsk_[0-9a-f]+_\S", result.stdout), "the full key was printed"
    # The second cancel is refused with a 409 problem document.
    answers = [
        json.loads(line)
        for line in result.stdout.splitlines()
        if line.startswith("{") and line.endswith("}")
    ]
    assert any(a.get("status") == 409 and a.get("allowed") == [] for a in answers)
    # The checkout: the quote offered windows, the first was held and the order booked on it.
    booked = answers[-1]
    assert booked["reference"] == "SO-1003" and booked["service_level"] in {
        "next_day",
        "scheduled",
        "same_day",
    }
    tomorrow = date.today() + timedelta(days=1)
    with runtime.sessions() as session:
        order = session.scalar(select(Order).where(Order.reference == "SO-1001"))
        assert order is not None and order.status == "cancelled"
        assert order.window_sequence == 1  # the PATCH moved the window once
        assert order.window_start is not None
        assert order.window_start.astimezone(UTC).date() == tomorrow
        types = session.scalars(
            select(DeliveryEvent.type)
            .where(DeliveryEvent.order_id == order.id)
            .where(~DeliveryEvent.type.startswith("message."))  # the messages it caused
            .order_by(DeliveryEvent.seq)
        ).all()
        assert types == ["order.created", "order.updated", "order.cancelled"]
        imported = session.scalar(select(Order).where(Order.reference == "SO-1002"))
        assert imported is not None and imported.service_time_s == 240
        # "09:00" without an offset is the merchant's (Monaco's) morning.
        assert imported.window_start is not None
        local_start = imported.window_start.astimezone(ZoneInfo("Europe/Monaco"))
        assert (local_start.date(), local_start.hour) == (tomorrow, 9)
        booked_order = session.scalar(select(Order).where(Order.reference == "SO-1003"))
        assert booked_order is not None and booked_order.window_start is not None
        held = session.scalar(select(Reservation).where(Reservation.order_id == booked_order.id))
        assert held is not None and held.status == "confirmed"
        assert held.window_start == booked_order.window_start
