"""Set up Cassandra authentication on a fresh or running cluster, idempotently (run by the cassandra
role on the first seed, with Debian's python3-cassandra driver).

Input: a JSON file (mode 0600) with contact_point, port, admin {name, password}, keyspace,
replication, roles [{name, password, permissions}], wait_s. It:
1. logs in as the admin, or on a fresh cluster as the built-in cassandra/cassandra, creates the
   admin superuser and locks the built-in role (no login, no superuser);
2. replicates system_auth and the pipeline keyspace with the given NetworkTopologyStrategy;
3. creates each login role (or resets its password) and grants it exactly its permissions on the
   keyspace. Prints "changed" when it created or locked anything.
"""

from __future__ import annotations

import json
import secrets
import sys
import time

from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable

PERMISSIONS = {"CREATE", "ALTER", "DROP", "SELECT", "MODIFY", "AUTHORIZE"}


def connect(spec: dict, user: str, password: str):
    cluster = Cluster([spec["contact_point"]], port=spec["port"],
                      auth_provider=PlainTextAuthProvider(username=user, password=password))
    return cluster, cluster.connect()


def _auth_failed(exc: NoHostAvailable) -> bool:
    errors = exc.errors.values()
    return any(isinstance(e, AuthenticationFailed) or "Bad credentials" in str(e) for e in errors)


def admin_session(spec: dict) -> tuple[object, object, bool]:
    """A session as the admin; creates the admin first on a fresh cluster. Retries until wait_s."""
    admin = spec["admin"]
    deadline = time.monotonic() + spec["wait_s"]
    while True:
        try:
            cluster, session = connect(spec, admin["name"], admin["password"])
            return cluster, session, False
        except NoHostAvailable as exc:
            if _auth_failed(exc):
                return (*bootstrap_admin(spec), True)
            if time.monotonic() > deadline:
                sys.exit(f"Cassandra at {spec['contact_point']}:{spec['port']} did not answer in "
                         f"{spec['wait_s']} s: {exc}")
            time.sleep(5)


def bootstrap_admin(spec: dict):
    """Create the admin as cassandra/cassandra (only valid on a fresh cluster), then lock that role."""
    admin = spec["admin"]
    try:
        cluster, session = connect(spec, "cassandra", "cassandra")
    except NoHostAvailable as exc:
        sys.exit(f"neither {admin['name']} nor the built-in cassandra role can log in: {exc}. "
                 "Is the admin password in the vault the one the cluster was set up with?")
    session.execute(f"CREATE ROLE IF NOT EXISTS {admin['name']} "
                    "WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = %s", [admin["password"]])
    cluster.shutdown()
    cluster, session = connect(spec, admin["name"], admin["password"])
    session.execute("ALTER ROLE cassandra WITH SUPERUSER = false AND LOGIN = false AND PASSWORD = %s",
                    [secrets.token_urlsafe(32)])
    return cluster, session


def replication_cql(replication: dict) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in sorted(replication.items())) + "}"


def apply_roles(session, spec: dict) -> bool:
    ks, repl = spec["keyspace"], replication_cql(spec["replication"])
    session.execute(f"ALTER KEYSPACE system_auth WITH replication = {repl}")
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {repl} AND durable_writes = true")
    existing = {row.role for row in session.execute("SELECT role FROM system_auth.roles")}
    for role in spec["roles"]:
        unknown = set(role["permissions"]) - PERMISSIONS
        if unknown:
            sys.exit(f"role {role['name']}: unknown permissions {sorted(unknown)}, expected some of "
                     f"{sorted(PERMISSIONS)}")
        session.execute(f"CREATE ROLE IF NOT EXISTS {role['name']} WITH LOGIN = true AND PASSWORD = %s",
                        [role["password"]])
        session.execute(f"ALTER ROLE {role['name']} WITH PASSWORD = %s", [role["password"]])
        for permission in role["permissions"]:
            session.execute(f"GRANT {permission} ON KEYSPACE {ks} TO {role['name']}")
    return any(role["name"] not in existing for role in spec["roles"])


def main(path: str) -> None:
    with open(path) as f:
        spec = json.load(f)
    cluster, session, created_admin = admin_session(spec)
    try:
        created_roles = apply_roles(session, spec)
    finally:
        cluster.shutdown()
    print("changed" if created_admin or created_roles else "ok")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] in {"-h", "--help"}:
        sys.exit(f"usage: {sys.argv[0]} AUTH_JSON  (see the module docstring)")
    main(sys.argv[1])
