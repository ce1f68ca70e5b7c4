"""Periodic upkeep of webhook endpoints: a rotated-out secret stops signing once its overlap
has passed (it is then forgotten)."""

from __future__ import annotations

from sqlalchemy import update

from doorstep.db.engine import transaction
from doorstep.domain.notifications.models import WebhookEndpoint
from doorstep.runtime import Runtime


def run_webhook_health(runtime: Runtime) -> int:
    """Forget expired previous secrets; return how many were forgotten."""
    with transaction(runtime.sessions) as session:
        now = runtime.clock.now()
        result = session.execute(
            update(WebhookEndpoint)
            .where(
                WebhookEndpoint.previous_secret.is_not(None),
                WebhookEndpoint.previous_secret_expires_at <= now,
            )
            .values(previous_secret=None, previous_secret_expires_at=None)
        )
        return int(getattr(result, "rowcount", 0) or 0)
