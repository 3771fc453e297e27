"""Security and durability promises of the Ansible cluster settings, read from the files themselves:
no plaintext secret in the repo, authentication on in cluster mode (off locally), replication 3 and
min ISR 2, least-privilege Kafka ACLs and Cassandra roles, and every inventory group configured."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
ROLES = ANSIBLE / "roles"
EXAMPLE_SECRETS = ANSIBLE / "vars" / "secrets.example.yml"


class _Loader(yaml.SafeLoader):
    """Reads Ansible YAML: `!vault` scalars become VaultText."""


class VaultText(str):
    pass


_Loader.add_constructor("!vault", lambda loader, node: VaultText(loader.construct_scalar(node)))


def _yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def _defaults(role: str) -> dict[str, Any]:
    return _yaml(ROLES / role / "defaults" / "main.yml")


def _evaluate(expression: str, mode: str, **context: Any) -> Any:
    """Render one Jinja default the way Ansible would for a host in `mode` (simple expressions)."""
    env = jinja2.Environment(autoescape=False)  # noqa: S701 - renders config values, not HTML
    return env.from_string(expression).render(stockafolio_mode=mode, **context).strip()


def _yaml_files() -> list[Path]:
    return [p for p in ANSIBLE.rglob("*") if p.suffix in {".yml", ".yaml", ".j2", ".json"} and p.is_file()]


@pytest.mark.parametrize(("role", "name", "local", "cluster"), [
    ("kafka", "kafka_replication_factor", "1", "3"),
    ("kafka", "kafka_min_insync_replicas", "1", "2"),
    ("kafka", "kafka_security", "False", "True"),
    ("kafka", "kafka_auto_create_topics", "True", "False"),
    ("cassandra", "cassandra_replication_factor", "1", "3"),
    ("cassandra", "cassandra_authenticator", "AllowAllAuthenticator", "PasswordAuthenticator"),
    ("cassandra", "cassandra_authorizer", "AllowAllAuthorizer", "CassandraAuthorizer"),
    ("cassandra", "cassandra_endpoint_snitch", "SimpleSnitch", "GossipingPropertyFileSnitch"),
    ("spark", "spark_s3a_instance_profile", "False", "True"),
])
def test_cluster_mode_turns_on_auth_and_replication_local_mode_keeps_the_small_stack(
        role: str, name: str, local: str, cluster: str) -> None:
    expression = _defaults(role)[name]
    assert _evaluate(expression, "local") == local
    assert _evaluate(expression, "cluster") == cluster


def test_the_keyspace_uses_network_topology_strategy_with_3_replicas() -> None:
    defaults = _defaults("cassandra")
    assert "'class': 'NetworkTopologyStrategy'" in defaults["cassandra_keyspace_replication"]
    assert "cassandra_replication_factor" in defaults["cassandra_keyspace_replication"]


def test_the_broker_config_denies_what_no_acl_allows_when_secured() -> None:
    template = (ROLES / "kafka" / "templates" / "server.properties.j2").read_text()
    secured = template.split("{% if kafka_security | bool %}", 1)[1].split("{% else %}", 1)[0]
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in secured
    assert "allow.everyone.if.no.acl.found=false" in secured
    assert "listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512" in secured
    assert "listeners=SASL_PLAINTEXT://" in secured
    assert "PLAINTEXT://" not in secured.replace("SASL_PLAINTEXT://", "")
    assert "min.insync.replicas={{ kafka_min_insync_replicas }}" in template
    # passwords belong in the 0600 JAAS file, not in server.properties (0644, shown in diffs)
    assert not re.search(r"password\s*=|jaas\.config", template, re.I)


def _acls() -> dict[str, set[tuple[str, str, str]]]:
    grants: dict[str, set[tuple[str, str, str]]] = {}
    for acl in _defaults("kafka")["kafka_acls"]:
        for op in acl["operations"]:
            grants.setdefault(acl["principal"], set()).add((acl["resource"], acl["name"], op))
    return grants


def test_each_kafka_principal_gets_only_its_own_topics() -> None:
    grants = _acls()
    assert set(grants) == {"generator", "streaming", "web"}
    writes = {p: {n for r, n, op in g if r == "topic" and op == "Write"} for p, g in grants.items()}
    reads = {p: {n for r, n, op in g if r == "topic" and op == "Read"} for p, g in grants.items()}
    assert writes == {"generator": {"trades", "prices"},
                      "streaming": {"portfolio-events", "trades-dead-letter"}, "web": set()}
    # the generator's archiver reads back only the trades it wrote
    assert reads == {"generator": {"trades"}, "streaming": {"trades", "prices"},
                     "web": {"portfolio-events", "prices"}}
    every_op = {op for g in grants.values() for _, _, op in g}
    assert every_op <= {"Read", "Write", "Describe"}, "no All, Alter, Create, Delete or cluster rights"
    users = _defaults("kafka")["kafka_users"]
    assert set(users) == set(grants)


def test_each_cassandra_role_has_least_privilege() -> None:
    roles = {r["name"]: set(r["permissions"]) for r in _defaults("cassandra")["cassandra_app_roles"]}
    # the web app writes session epochs and failed logins (migration 008), nothing else by design
    assert roles["stockafolio_web"] == {"SELECT", "MODIFY"}
    assert roles["stockafolio_stream"] == {"SELECT", "MODIFY"}
    assert roles["stockafolio_batch"] == {"SELECT", "MODIFY"}
    assert all("AUTHORIZE" not in p for p in roles.values())
    assert not any({"CREATE", "DROP", "ALTER"} & p for n, p in roles.items() if n != "stockafolio_migrator")
    # the runner records each migration in schema_migrations (an INSERT), so the migrator needs MODIFY
    assert roles["stockafolio_migrator"] == {"CREATE", "ALTER", "DROP", "SELECT", "MODIFY"}


def _secret_names_used() -> set[str]:
    names: set[str] = set()
    for path in _yaml_files():
        names |= set(re.findall(r"\bvault_[a-z_]+\b", path.read_text()))
    return names


def test_every_secret_comes_from_the_vault_and_the_example_names_them_all() -> None:
    example = _yaml(EXAMPLE_SECRETS)
    secrets = {k: v for k, v in example.items() if k.startswith("vault_")}
    assert secrets
    assert all(isinstance(v, VaultText) and v.startswith("$ANSIBLE_VAULT;") for v in secrets.values())
    assert all("REPLACE" in v for v in secrets.values()), "the example holds placeholders, never real values"
    assert _secret_names_used() == set(secrets)
    assert (ANSIBLE / ".gitignore").read_text().splitlines().count("vars/secrets.yml") == 1


def test_no_plaintext_secret_is_assigned_anywhere_in_ansible() -> None:
    offenders = []
    for path in _yaml_files():
        if path == EXAMPLE_SECRETS:
            continue
        data = _yaml(path) if path.suffix == ".yml" else None
        for key, value in _walk(data):
            secret = re.search(r"(password|secret_key)$", str(key)) and isinstance(value, str)
            # a value must come from a variable or a lookup, never be written here
            if secret and not re.fullmatch(r"\{\{.*\}\}", value.strip(), re.S):
                offenders.append(f"{path.relative_to(REPO)}: {key}")
    assert offenders == []


def _walk(data: Any) -> list[tuple[Any, Any]]:
    if isinstance(data, dict):
        return [(k, v) for k, v in data.items()] + [p for v in data.values() for p in _walk(v)]
    if isinstance(data, list):
        return [p for v in data for p in _walk(v)]
    return []


def _tasks(path: Path) -> list[dict[str, Any]]:
    found = []
    for task in _yaml(path) or []:
        found.append(task)
        found += [t for key in ("block", "rescue", "always") for t in task.get(key, [])]
    return found


def test_tasks_that_write_credentials_hide_them() -> None:
    credential_files = re.compile(
        r"jaas|admin\.properties|auth\.json|\.env\b|spark_job|_password|webapp_secret_key|vault_")
    checked = 0
    for path in ROLES.glob("*/tasks/*.yml"):
        for task in _tasks(path):
            body = yaml.safe_dump({k: v for k, v in task.items() if k not in ("name", "block")})
            if any(m in task for m in ("ansible.builtin.template", "ansible.builtin.copy")) and \
                    credential_files.search(body):
                checked += 1
                assert task.get("no_log") in (True, "{{ kafka_security | bool }}"), f"{path}: {task['name']}"
                assert task.get("diff") is False, f"{path}: {task['name']}"
    assert checked >= 4


def test_every_inventory_group_gets_its_role() -> None:
    playbook = _yaml(ANSIBLE / "cluster.yml")[0]
    conditions = " ".join(str(r.get("when", "")) for r in playbook["roles"])
    example = _yaml(ANSIBLE / "inventories" / "example" / "hosts.yml")["all"]["children"]
    aws = _yaml(ANSIBLE / "inventories" / "aws" / "aws_ec2.yml")
    leaf_groups = {"kafka", "cassandra", "spark_master", "spark_worker", "hdfs_namenode", "hdfs_datanode",
                   "web", "generator", "locust"}
    groups = set(example) | {g for c in example.values() for g in (c or {}).get("children", {})}
    assert leaf_groups <= groups and set(aws["groups"]) <= groups
    parents = {"spark_master": "spark", "spark_worker": "spark",
               "hdfs_namenode": "hdfs", "hdfs_datanode": "hdfs"}
    for group in leaf_groups:
        assert {f"'{group}'", f"'{parents.get(group)}'"} & set(re.findall(r"'\w+'", conditions)), group


def test_the_cluster_schedules_the_nightly_batch_on_the_spark_master() -> None:
    roles = {r["role"]: r for r in _yaml(ANSIBLE / "cluster.yml")[0]["roles"]}
    assert roles["nightly"]["when"] == "'spark_master' in group_names"
    assert list(roles).index("nightly") > list(roles).index("app")  # it runs from the app's release


def test_cluster_topics_match_the_local_ones_and_events_are_compacted() -> None:
    from stockafolio import topics

    declared = {t["name"]: t for t in _defaults("kafka")["kafka_topics"]}
    assert set(declared) == set(topics.PIPELINE_TOPICS)
    for name, settings in topics.TOPIC_CONFIGS.items():
        assert sorted(declared[name]["config"]) == sorted(f"{k}={v}" for k, v in settings.items())
    task = (ROLES / "kafka" / "tasks" / "security.yml").read_text()
    assert "map('regex_replace', '^', '--config=')" in task


def _render_cron(**context: Any) -> str:
    import shlex

    env = jinja2.Environment(autoescape=False)  # noqa: S701 - renders a shell line, not HTML
    env.filters["quote"] = shlex.quote
    template = (ROLES / "nightly" / "templates" / "nightly.cron.j2").read_text()
    defaults = {"nightly_app_dir": "/opt/app", "nightly_var_dir": "/var/sf", "nightly_python": "/opt/py",
                "nightly_keyspace": "stockafolio", "nightly_hdfs_root": "/stockafolio",
                "nightly_sp500_dir": "/data", "nightly_repair": False, "nightly_extra_args": [],
                "nightly_log_dir": "/var/log/sf", "nightly_env_file": "/var/sf/conf/nightly.env"}
    return env.from_string(template).render(**{**defaults, **context}).strip()


def test_the_nightly_cron_line_sources_its_login_without_showing_it() -> None:
    cluster = _render_cron(nightly_cassandra_user="stockafolio_batch", nightly_cassandra_password="s3cret")
    assert cluster.startswith("set -a && . /var/sf/conf/nightly.env && set +a && cd /opt/app && ")
    assert "s3cret" not in cluster
    local = _render_cron(nightly_cassandra_user="", nightly_cassandra_password="")
    assert local.startswith("cd /opt/app && ")
    tasks = (ROLES / "nightly" / "tasks" / "main.yml").read_text()
    assert "STOCKAFOLIO_CASSANDRA_PASSWORD={{ nightly_cassandra_password | quote }}" in tasks
    assert 'mode: "0600"' in tasks and "no_log: true" in tasks


@pytest.mark.parametrize(("role", "path"), [("streaming", "tasks/main.yml"), ("generator", "tasks/main.yml"),
                                            ("webapp", "defaults/main.yml")])
def test_each_pipeline_unit_gets_the_logins_the_code_reads(role: str, path: str) -> None:
    text = (ROLES / role / path).read_text()
    assert "STOCKAFOLIO_KAFKA_SASL_USERNAME:" in text and "STOCKAFOLIO_KAFKA_SASL_PASSWORD:" in text
    if role != "generator":  # the generator talks to Kafka and S3 only
        assert "STOCKAFOLIO_CASSANDRA_USERNAME:" in text and "STOCKAFOLIO_CASSANDRA_PASSWORD:" in text
    assert all("vault_" in line for line in text.splitlines() if "_PASSWORD:" in line
               and "spark_jobs." not in line)


def _generator_instances(hosts: list[str]) -> dict[str, tuple[int, int]]:
    """host -> (--instance, --instances) as the generator role's defaults give them for `hosts`."""
    from jinja2.nativetypes import NativeEnvironment

    env, defaults, flags = NativeEnvironment(), _defaults("generator"), {}
    for host in hosts:
        context: dict[str, Any] = {"groups": {"generator": hosts}, "inventory_hostname": host}
        context["generator_hosts"] = env.from_string(defaults["generator_hosts"]).render(**context)
        flags[host] = tuple(int(env.from_string(defaults[name]).render(**context))
                            for name in ("generator_instance", "generator_instances"))
    return flags


def test_each_generator_host_runs_its_own_instance() -> None:
    # A trade id carries its generator's instance (stockafolio.records.trade_id): generators started in
    # the same second must each have their own, the same on every run whatever the inventory's order.
    hosts = ["generator-2", "generator-10", "generator-1"]
    flags = _generator_instances(hosts)
    assert sorted(flags.values()) == [(0, 3), (1, 3), (2, 3)]
    assert _generator_instances(hosts[::-1]) == flags
    tasks = (ROLES / "generator" / "tasks" / "main.yml").read_text()
    assert "'--instance', generator_instance | string, '--instances', generator_instances | string" in tasks
    example = _yaml(ANSIBLE / "inventories" / "example" / "hosts.yml")["all"]["children"]
    assert _generator_instances(list(example["generator"]["hosts"])) == {"generator-1": (0, 1)}


def _granted(principal: str, group: str) -> bool:
    return any(acl["principal"] == principal and acl["resource"] == "group"
               and (group == acl["name"] if acl["pattern"] == "literal" else group.startswith(acl["name"]))
               for acl in _defaults("kafka")["kafka_acls"])


def test_each_consumer_group_in_the_code_is_granted_to_its_login() -> None:
    # A consumer looks up its group's coordinator even when it only assigns partitions, and the
    # cluster allows nothing without an ACL: every group id the code uses must be granted.
    code = {("web", "webapp/live.py"), ("streaming", "streaming/health.py"),
            ("generator", "generator/cli.py")}
    for principal, path in code:
        text = (REPO / path).read_text()
        groups = set(re.findall(r'"group\.id": "([^"]+)"', text)) | set(
            re.findall(r'group"?, default="([^"]+)"', text))
        assert groups, f"no consumer group found in {path}"
        for group in groups:
            assert _granted(principal, group), f"{path}: group {group!r} has no ACL for User:{principal}"


def test_the_nightly_cron_passes_a_raw_folder_only_when_one_is_set() -> None:
    assert "--sp500 /data" in _render_cron(nightly_sp500_dir="/data")
    assert "--sp500" not in _render_cron(nightly_sp500_dir="")
