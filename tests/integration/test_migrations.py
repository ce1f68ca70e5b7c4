"""Migrations build the schema, match the models exactly, and have a single head."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from doorstep.db.migrate import current_revision, heads
from doorstep.db.registry import metadata


def test_single_migration_head() -> None:
    assert len(heads()) == 1, f"more than one Alembic head: {heads()}"


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == [], f"models differ from migrations; add a migration: {diff}"


def test_migrated_database_is_at_head_with_every_table(engine: Engine) -> None:
    assert current_revision(engine) == heads()[0]
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
