"""Forward-only, numbered CQL migrations, each applied once and recorded in the keyspace.

Files are `cassandra/migrations/NNN_name.cql`; statements are separated by `;` at the end of a line
and may use `{keyspace}`, the only value formatted into CQL (validated, since DDL cannot bind it).
A migration that was applied and then edited is refused: write a new one instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cassandra.cluster import Session
from stockafolio.cql import check_identifier
from stockafolio.errors import SchemaError

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.cql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    checksum: str


def load(folder: Path) -> list[Migration]:
    """Read and order the migrations; refuse gaps, duplicates and odd names."""
    found = [_parse(p) for p in sorted(folder.glob("*.cql"))]
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise SchemaError(f"migrations in {folder} must be numbered 001.. without gaps, got {versions}")
    return found


def _parse(path: Path) -> Migration:
    match = _NAME.match(path.name)
    if not match:
        raise SchemaError(f"{path.name}: expected a name like 001_accounts.cql")
    text = path.read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    statements = tuple(s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip())
    if not statements:
        raise SchemaError(f"{path.name} holds no statement")
    return Migration(int(match[1]), match[2], statements, hashlib.sha256(text.encode()).hexdigest())


def keyspace_ddl(keyspace: str, replication: dict[str, str | int]) -> str:
    """CREATE KEYSPACE for the local node (SimpleStrategy 1) or a cluster (NetworkTopologyStrategy)."""
    pairs = ", ".join(f"'{k}': '{v}'" for k, v in sorted(replication.items()))
    return (
        f"CREATE KEYSPACE IF NOT EXISTS {check_identifier(keyspace)} "
        f"WITH replication = {{{pairs}}} AND durable_writes = true"
    )


def apply(
    session: Session,
    keyspace: str,
    migrations: Iterable[Migration],
    replication: dict[str, str | int],
) -> list[Migration]:
    """Create the keyspace if needed and apply the migrations it has not recorded; return those."""
    ks = check_identifier(keyspace)
    if ks not in session.cluster.metadata.keyspaces:  # CREATE needs a right on all keyspaces, even
        session.execute(keyspace_ddl(ks, replication))  # with IF NOT EXISTS: the cluster's migrator lacks it
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {ks}.schema_migrations ("
        "version int PRIMARY KEY, name text, checksum text, applied_at timestamp) "
        "WITH comment = 'Which numbered migrations were applied to this keyspace'"
    )
    done = _applied(session, ks)
    # ks passed check_identifier: a keyspace cannot be a bind marker, values always are.
    record = session.prepare(
        f"INSERT INTO {ks}.schema_migrations (version, name, checksum, applied_at) "  # noqa: S608
        "VALUES (?, ?, ?, ?)"
    )
    applied = []
    for m in migrations:
        if m.version in done:
            _check_unchanged(m, done[m.version])
            continue
        for statement in m.statements:
            session.execute(statement.replace("{keyspace}", ks), timeout=60)
        session.execute(record, (m.version, m.name, m.checksum, datetime.now(UTC)))
        applied.append(m)
    return applied


def _applied(session: Session, ks: str) -> dict[int, str]:
    query = f"SELECT version, checksum FROM {ks}.schema_migrations"  # noqa: S608 (validated ks)
    rows = session.execute(session.prepare(query))
    return {r.version: r.checksum for r in rows}


def _check_unchanged(m: Migration, recorded: str) -> None:
    if m.checksum != recorded:
        raise SchemaError(
            f"migration {m.version:03d}_{m.name} was edited after it was applied "
            "(checksum differs); add a new migration instead"
        )
