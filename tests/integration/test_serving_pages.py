"""A real ``doorstep serve`` on the embedded SQLite, its console under load: 64 signed-in
clients saving order forms and opening order pages at once all get their answer, none
"database is locked" (issue 18 §6; the API's counterpart is ``test_serving.py``)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from doorstep.bench.http_load import loopback_client
from doorstep.bench.local_server import ServerProcess
from doorstep.clock import SystemClock
from doorstep.db.engine import make_engine, transaction
from doorstep.domain.accounts.models import Role
from doorstep.domain.accounts.service import create_merchant
from doorstep.domain.accounts.users import create_user
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.factories import make_order

CLIENTS = 64
EDITS = 240
READS = 60
EMAIL = "dispatch@example.com"
PASSWORD = "Riviera-Blooms-2026!"


def _seed(database_url: str, data_dir: Path) -> list[str]:
    """A merchant, a dispatcher and EDITS orders, written next to the running server."""
    engine = make_engine(database_url)
    runtime = Runtime(settings=Settings(data_dir=data_dir), clock=SystemClock(), engine=engine)
    try:
        with transaction(runtime.sessions) as s:
            merchant = create_merchant(s, runtime.clock, name="Riviera Florist")
            create_user(s, runtime.clock, merchant, EMAIL, "Dispatch", Role.DISPATCHER, PASSWORD)
            start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0)
            window = (start, start + timedelta(hours=2))
            return [
                make_order(
                    s, merchant.id, reference=f"L-{n}", lat=43.74, lon=7.42, window=window
                ).id
                for n in range(EDITS)
            ]
    finally:
        engine.dispose()


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


async def _load(base_url: str, order_ids: list[str]) -> Counter[str]:
    """Sign in once, then EDITS form posts and READS page views from CLIENTS clients."""
    outcomes: Counter[str] = Counter()
    async with loopback_client(base_url, CLIENTS, timeout_s=120) as client:
        token = _csrf(await client.get("/console/login"))
        form = {"email": EMAIL, "password": PASSWORD, "csrf_token": token}
        signed_in = await client.post("/console/login", data=form)
        assert signed_in.status_code == 303, signed_in.text
        token = _csrf(await client.get("/console"))
        jobs: list[tuple[str, str]] = [("edit", order_id) for order_id in order_ids]
        jobs += [("read", order_ids[n % len(order_ids)]) for n in range(READS)]
        queue = iter(jobs)

        async def worker() -> None:
            for kind, order_id in queue:
                path = f"/console/orders/{order_id}"
                try:
                    if kind == "edit":
                        fields = {
                            "recipient_name": f"Edited {order_id[-6:]}",
                            "recipient_phone": "+33612345678",
                            "address_line1": "2 Boulevard des Moulins",
                            "city": "Monaco",
                            "postal_code": "98000",
                            "csrf_token": token,
                        }
                        answer = await client.post(f"{path}/edit", data=fields)
                    else:
                        answer = await client.get(path)
                    outcomes[f"{kind} {answer.status_code}"] += 1
                except httpx.TransportError as exc:
                    outcomes[f"{kind} {type(exc).__name__}"] += 1

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return outcomes


@pytest.mark.slow
def test_sixty_four_console_clients_at_once_on_sqlite_all_succeed(tmp_path: Path) -> None:
    """Every form post is saved (303) and every page shown (200): the sign-in check, the
    work, the commit and the render share one pool thread, so the write lock's holder always
    has a thread to commit on."""
    url = f"sqlite:///{tmp_path / 'pages.sqlite3'}"
    with ServerProcess(url, tmp_path) as server:
        order_ids = _seed(url, tmp_path / "data")
        outcomes = asyncio.run(_load(server.base_url, order_ids))
        log = server.log_tail()
    assert outcomes == Counter({"edit 303": EDITS, "read 200": READS}), log
    assert "database is locked" not in log
