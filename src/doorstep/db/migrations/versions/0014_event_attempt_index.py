"""An index for the attempts of a period: analytics finds the orders first attempted in it
(their first ``delivery.delivered`` or ``delivery.failed``) without reading every event.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 15:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_events_merchant_type_occurred",
            ["merchant_id", "type", "occurred_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_events_merchant_type_occurred")
