"""One periodic job for both kinds of password-less sign-in: the console's links and the
driver app's links and codes. Each is usable for minutes; its row is kept a day after it
expires (so a late click still gets "this link has expired" rather than "unknown"), then
deleted."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.login_links import ConsoleLoginLink
from doorstep.domain.dispatch.signin import DriverLogin
from doorstep.runtime import Runtime

KEPT_AFTER_EXPIRY = timedelta(days=1)


def purge_sign_ins(session: Session, clock: Clock) -> int:
    """Delete sign-ins of either kind that expired over :data:`KEPT_AFTER_EXPIRY` ago; return
    how many."""
    before = clock.now() - KEPT_AFTER_EXPIRY
    deleted = 0
    for model in (ConsoleLoginLink, DriverLogin):
        result = session.execute(
            delete(model)
            .where(model.expires_at < before)
            .execution_options(synchronize_session=False)
        )
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


def run_purge_sign_ins(runtime: Runtime) -> int:
    """The periodic job (hourly)."""
    with transaction(runtime.sessions) as session:
        return purge_sign_ins(session, runtime.clock)
