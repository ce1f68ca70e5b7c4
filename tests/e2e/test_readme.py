"""The README's API walk-through runs as written, so it cannot rot."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.runtime import Runtime

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands(heading: str) -> list[str]:
    """The ```bash blocks of one README section, in order."""
    text = README.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    section = text[start : end if end != -1 else None]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def test_readme_starts_with_the_two_commands() -> None:
    """A newcomer sees what Doorstep is, then how to run it and how to test it."""
    first = readme_commands("# Doorstep")[0]
    assert "make run" in first and "make test" in first
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_api_walkthrough_runs_against_a_live_server(
    live_server: str, runtime: Runtime, tmp_path: Path
) -> None:
    """Every curl in 'Five minutes with the API' succeeds, and leaves what the text says."""
    blocks = readme_commands("## Five minutes with the API")
    assert len(blocks) >= 5
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    env = {
        **os.environ,
        "DOORSTEP": live_server,
        "DOORSTEP_DATABASE_URL": runtime.engine.url.render_as_string(hide_password=False),
        "DOORSTEP_DATA_DIR": str(runtime.settings.data_dir),
        "DOORSTEP_SECRET_KEY": runtime.settings.effective_secret_key,
    }
    script = "set -euo pipefail\n" + "\n".join(blocks)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    # The last command is the refused second cancel: a 409 problem document.
    refused = json.loads(result.stdout.strip().splitlines()[-1])
    assert refused["status"] == 409
    order_id = json.loads((tmp_path / "order.json").read_text())["id"]
    with runtime.sessions() as session:
        order = session.get(Order, order_id)
        assert order is not None and order.status == "cancelled"
        assert order.window_sequence == 1  # the PATCH moved the window once
        types = session.scalars(
            select(DeliveryEvent.type)
            .where(DeliveryEvent.order_id == order_id)
            .where(~DeliveryEvent.type.startswith("message."))  # the messages it caused
            .order_by(DeliveryEvent.seq)
        ).all()
        assert types == ["order.created", "order.updated", "order.cancelled"]
        refs = set(session.scalars(select(Order.reference)).all())
        assert refs == {"SO-1001", "SO-1002"}
