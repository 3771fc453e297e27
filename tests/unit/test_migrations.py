from __future__ import annotations

from pathlib import Path

import pytest

from stockafolio import migrations
from stockafolio.errors import ConfigError, SchemaError

REPO = Path(__file__).resolve().parents[2]


def test_repo_migrations_load_in_order() -> None:
    found = migrations.load(REPO / "cassandra" / "migrations")
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    for m in found:
        assert all("{keyspace}." in s for s in m.statements if s.upper().startswith("CREATE TABLE"))
        assert all("WITH comment" in s for s in m.statements if s.upper().startswith("CREATE TABLE"))


def test_statements_split_and_comments_dropped(tmp_path: Path) -> None:
    (tmp_path / "001_a.cql").write_text("-- note; not a statement\nCREATE TABLE x (a int);\n"
                                        "CREATE TABLE y (b int);\n")
    (m,) = migrations.load(tmp_path)
    assert m.statements == ("CREATE TABLE x (a int)", "CREATE TABLE y (b int)")


def test_gap_in_numbering_is_refused(tmp_path: Path) -> None:
    (tmp_path / "001_a.cql").write_text("CREATE TABLE x (a int);")
    (tmp_path / "003_c.cql").write_text("CREATE TABLE y (a int);")
    with pytest.raises(SchemaError, match=r"without gaps, got \[1, 3\]"):
        migrations.load(tmp_path)


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_a.cql").write_text("CREATE TABLE x (a int);")
    with pytest.raises(SchemaError, match="expected a name like 001_accounts.cql"):
        migrations.load(tmp_path)


def test_keyspace_ddl_validates_the_name() -> None:
    ddl = migrations.keyspace_ddl("stocka", {"class": "SimpleStrategy", "replication_factor": 1})
    assert ddl.startswith("CREATE KEYSPACE IF NOT EXISTS stocka WITH replication = {")
    assert "'replication_factor': '1'" in ddl
    with pytest.raises(ConfigError):
        migrations.keyspace_ddl("x; DROP KEYSPACE y", {"class": "SimpleStrategy"})


class _Recorder:
    """A driver session stand-in that records statements; `keyspaces` is what the cluster reports."""

    def __init__(self, keyspaces: set[str]) -> None:
        self.statements: list[str] = []
        self.cluster = type("C", (), {"metadata": type("M", (), {"keyspaces": dict.fromkeys(keyspaces)})()})()

    def execute(self, statement, params=None, timeout=None):
        self.statements.append(statement if isinstance(statement, str) else "INSERT")
        return []

    def prepare(self, statement: str) -> str:
        return statement


@pytest.mark.parametrize(("existing", "creates"), [(set(), True), ({"ks1"}, False)])
def test_keyspace_created_only_when_missing(existing: set[str], creates: bool) -> None:
    # On the cluster the play makes the keyspace and the migrator login may not CREATE KEYSPACE
    # (Cassandra checks that right before it looks at IF NOT EXISTS), so the runner must not send it.
    session = _Recorder(existing)
    migrations.apply(session, "ks1", [], {"class": "SimpleStrategy", "replication_factor": 1})
    assert any(s.startswith("CREATE KEYSPACE") for s in session.statements) is creates
    assert any("schema_migrations" in s for s in session.statements)
