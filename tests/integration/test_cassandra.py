"""Cassandra through the Python driver: the migration runner on a fresh keyspace, prepared I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stack.cli import LOCAL_REPLICATION
from stockafolio import migrations
from stockafolio.errors import SchemaError

REPO = Path(__file__).resolve().parents[2]


def test_migrations_apply_once_and_data_round_trips(cassandra_session, run_id: str) -> None:
    ks = f"{run_id}_schema"
    todo = migrations.load(REPO / "cassandra" / "migrations")
    try:
        assert migrations.apply(cassandra_session, ks, todo, LOCAL_REPLICATION) == todo
        assert migrations.apply(cassandra_session, ks, todo, LOCAL_REPLICATION) == []
        insert = cassandra_session.prepare(
            f"INSERT INTO {ks}.accounts_by_username (username, user_id, password_hash, role, "  # noqa: S608
            "created_at) VALUES (?, ?, ?, ?, ?)")
        now = datetime.now(UTC).replace(microsecond=0)
        cassandra_session.execute(insert, ("alice", 42, "pbkdf2$x", "user", now))
        select = cassandra_session.prepare(
            f"SELECT user_id, role, created_at FROM {ks}.accounts_by_username WHERE username = ?")  # noqa: S608
        row = cassandra_session.execute(select, ("alice",)).one()
        assert (row.user_id, row.role) == (42, "user")
        assert row.created_at.replace(tzinfo=UTC) == now
    finally:
        cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {ks}")


def test_edited_migration_is_refused(cassandra_session, run_id: str, tmp_path: Path) -> None:
    ks = f"{run_id}_edited"
    first = tmp_path / "001_t.cql"
    first.write_text("CREATE TABLE IF NOT EXISTS {keyspace}.t (id int PRIMARY KEY) WITH comment = 'x';")
    try:
        migrations.apply(cassandra_session, ks, migrations.load(tmp_path), LOCAL_REPLICATION)
        first.write_text(first.read_text() + "\n-- changed afterwards\n")
        with pytest.raises(SchemaError, match="001_t was edited after it was applied"):
            migrations.apply(cassandra_session, ks, migrations.load(tmp_path), LOCAL_REPLICATION)
    finally:
        cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {ks}")


def test_stack_keyspace_has_the_migrations(cassandra_session, stack_config) -> None:
    rows = cassandra_session.execute(
        f"SELECT version FROM {stack_config.keyspace}.schema_migrations")  # noqa: S608
    applied = sorted(r.version for r in rows)
    assert applied == [m.version for m in migrations.load(REPO / "cassandra" / "migrations")]
