"""ansible/cluster.yml in check mode (--check --diff) against the example several-host inventory.

No SSH and no AWS: every host is reached with connection=local, its paths point into a temp folder,
and check mode writes nothing. A tiny callback plugin collects each task's rendered file (the
"after" side of its diff), so the configs of every host can be checked: broker ids and the KRaft
quorum, replication and min ISR, SASL listeners, Cassandra seeds and snitch, HDFS and Spark
addresses, the systemd units and the sticky nginx upstream. Test secrets must never be printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ansible

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
CACHE = Path(os.environ.get("STOCKAFOLIO_CACHE", Path.home() / ".cache" / "stockafolio"))
SECRET_NAMES = [
    "vault_kafka_admin_password", "vault_kafka_generator_password", "vault_kafka_streaming_password",
    "vault_kafka_web_password", "vault_cassandra_admin_password", "vault_cassandra_stream_password",
    "vault_cassandra_web_password", "vault_cassandra_batch_password", "vault_cassandra_migrator_password",
    "vault_web_secret_key",
]
CALLBACK = '''
import json, os
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "capture_diffs"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.rows = []

    def _keep(self, result):
        diffs = result._result.get("diff") or []
        for d in [diffs] if isinstance(diffs, dict) else diffs:
            if "after" in d:
                self.rows.append({"host": result._host.get_name(), "task": result._task.get_name(),
                                  "header": str(d.get("after_header") or ""), "after": d["after"]})

    def v2_runner_on_ok(self, result):
        self._keep(result)

    def v2_runner_item_on_ok(self, result):
        self._keep(result)

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["CAPTURE_DIFFS_TO"], "w") as f:
            json.dump(self.rows, f)
'''


def _example_hosts() -> dict[str, str]:
    inventory = yaml.safe_load((ANSIBLE / "inventories" / "example" / "hosts.yml").read_text())
    hosts: dict[str, str] = {}

    def walk(group: dict) -> None:
        for name, host in (group.get("hosts") or {}).items():
            hosts[name] = host["ansible_host"]
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(inventory["all"])
    return hosts


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not (CACHE / "kafka").is_dir():
        pytest.skip(f"no jar cache in {CACHE}: run bin/stockafolio run once")
    tmp = tmp_path_factory.mktemp("cluster-check")
    hosts_root = tmp / "hosts"
    (tmp / "callbacks").mkdir()
    (tmp / "callbacks" / "capture_diffs.py").write_text(CALLBACK)
    secrets = {name: f"TESTSECRET-{name}" for name in SECRET_NAMES}
    secrets["kafka_cluster_id"] = "MkU3OEVBNTcwNTJENDM2Qk"
    (tmp / "secrets.yml").write_text(yaml.safe_dump(secrets))
    per_host = str(hosts_root) + "/{{ inventory_hostname }}"
    extra = {
        # no SSH: every host is this machine; the system Python has python3-apt for the apt checks
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_become": False,
        "stockafolio_var": per_host + "/var", "stockafolio_app_dir": per_host + "/app",
        "stockafolio_systemd_dir": per_host + "/systemd", "systemd_service_env_dir": per_host + "/env",
        "nginx_conf_dir": per_host + "/nginx", "stockafolio_cache": str(CACHE),
        "stockafolio_service_start": False, "stockafolio_secrets_file": str(tmp / "secrets.yml"),
        "app_pack_dir": str(tmp),
    }
    (tmp / "extra.yml").write_text(yaml.safe_dump(extra))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "false",
           "ANSIBLE_CALLBACK_PLUGINS": str(tmp / "callbacks"), "ANSIBLE_CALLBACKS_ENABLED": "capture_diffs",
           "CAPTURE_DIFFS_TO": str(tmp / "diffs.json"), "ANSIBLE_LOCALHOST_WARNING": "false"}
    # The nightly role's cron module needs a crontab binary even in check mode, and this machine has
    # none; the role is checked where it is written (tests of the nightly batch).
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "--check", "--diff",
            "--skip-tags", "nightly", "-i", "inventories/example", "-e", f"@{tmp / 'extra.yml'}",
            "cluster.yml"]
    done = subprocess.run(argv, cwd=ANSIBLE, env=env, text=True, capture_output=True, timeout=900,
                          check=False)
    files: dict[str, dict[str, str]] = defaultdict(dict)
    rows = json.loads((tmp / "diffs.json").read_text()) if (tmp / "diffs.json").exists() else []
    for row in rows:
        name = Path(row["header"]).name.removesuffix(".j2")
        if name == "unit.service":  # one template, several units: name them by the task
            name = row["task"].rsplit(" ", 1)[-1] + ".service"
        files[row["host"]][name] = row["after"]
    return {"done": done, "files": files, "rows": rows, "hosts_root": hosts_root,
            "addr": _example_hosts()}


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def test_the_cluster_playbook_passes_check_mode_on_every_host(run: dict) -> None:
    done = run["done"]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    recap = re.findall(r"^(\S+)\s*: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", done.stdout, re.M)
    assert sorted(recap) == sorted(run["addr"])
    assert not run["hosts_root"].exists(), "check mode must not write anything"


def test_no_secret_reaches_the_output_or_a_diff(run: dict) -> None:
    everything = run["done"].stdout + run["done"].stderr + json.dumps(run["rows"])
    assert "TESTSECRET" not in everything


def test_kafka_brokers_form_one_quorum_with_replication_3_and_min_isr_2(run: dict) -> None:
    addr, files = run["addr"], run["files"]
    brokers = {h: _props(files[h]["server.properties"]) for h in ("kafka-1", "kafka-2", "kafka-3")}
    assert sorted(p["node.id"] for p in brokers.values()) == ["1", "2", "3"]
    voters = {p["controller.quorum.voters"] for p in brokers.values()}
    assert voters == {",".join(f"{i}@{addr[f'kafka-{i}']}:9093" for i in (1, 2, 3))}
    for host, p in brokers.items():
        assert p["process.roles"] == "broker,controller"
        assert p["min.insync.replicas"] == "2" and p["default.replication.factor"] == "3"
        assert p["offsets.topic.replication.factor"] == "3" and p["transaction.state.log.min.isr"] == "2"
        assert p["listeners"] == f"SASL_PLAINTEXT://{addr[host]}:9092,CONTROLLER://{addr[host]}:9093"
        assert p["listener.name.sasl_plaintext.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
        assert p["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
        assert p["authorizer.class.name"].endswith("StandardAuthorizer")
        assert p["allow.everyone.if.no.acl.found"] == "false" and p["auto.create.topics.enable"] == "false"
        assert "PLAINTEXT://" not in p["listeners"].replace("SASL_PLAINTEXT://", "")
        unit = files[host]["stockafolio-kafka.service"]
        assert "java.security.auth.login.config" in unit and "User=stockafolio" in unit


def test_clients_get_every_broker_and_every_cassandra_node(run: dict) -> None:
    addr, files = run["addr"], run["files"]
    assert files  # the endpoint files share one template name: pick them by task
    endpoints: dict[str, dict] = defaultdict(dict)
    for row in run["rows"]:
        if row["task"].endswith("Render the Kafka endpoint"):
            endpoints[row["host"]]["kafka"] = json.loads(row["after"])
        if row["task"].endswith("Render the Cassandra endpoint"):
            endpoints[row["host"]]["cassandra"] = json.loads(row["after"])
    for host in ("web-1", "web-2", "generator-1", "spark-master-1", "spark-worker-1"):
        assert endpoints[host]["kafka"]["bootstrap_servers"].split(",") == [
            f"{addr[f'kafka-{i}']}:9092" for i in (1, 2, 3)]
        assert endpoints[host]["cassandra"]["contact_points"] == [addr[f"cassandra-{i}"] for i in (1, 2, 3)]
        assert endpoints[host]["cassandra"]["local_dc"] == "dc1"


def test_cassandra_nodes_gossip_their_zone_and_require_logins(run: dict) -> None:
    addr, files = run["addr"], run["files"]
    racks = set()
    for i in (1, 2, 3):
        host = f"cassandra-{i}"
        conf = yaml.safe_load(files[host]["cassandra.yaml"])
        seeds = conf["seed_provider"][0]["parameters"][0]["seeds"].split(",")
        assert seeds == [f"{addr[f'cassandra-{n}']}:7000" for n in (1, 2, 3)]
        assert conf["endpoint_snitch"] == "GossipingPropertyFileSnitch"
        assert conf["authenticator"] == "PasswordAuthenticator"
        assert conf["authorizer"] == "CassandraAuthorizer"
        assert conf["listen_address"] == addr[host] and conf["rpc_address"] == addr[host]
        assert conf["allocate_tokens_for_local_replication_factor"] == 3
        rackdc = _props(files[host]["cassandra-rackdc.properties"])
        assert rackdc["dc"] == "dc1"
        racks.add(rackdc["rack"])
        assert "User=stockafolio" in files[host]["stockafolio-cassandra.service"]
    assert len(racks) == 3


def test_hdfs_daemons_run_where_their_group_says_and_find_the_namenode(run: dict) -> None:
    addr, files = run["addr"], run["files"]
    namenode = addr["hdfs-namenode-1"]
    assert "stockafolio-hdfs-namenode.service" in files["hdfs-namenode-1"]
    assert "stockafolio-hdfs-datanode.service" not in files["hdfs-namenode-1"]
    for host in ("hdfs-datanode-1", "hdfs-datanode-2"):
        assert "stockafolio-hdfs-datanode.service" in files[host]
        assert "stockafolio-hdfs-namenode.service" not in files[host]
        assert f"<value>hdfs://{namenode}:8020</value>" in files[host]["core-site.xml"]
        # two DataNodes in this inventory: two copies of each block, not an unreachable 3
        assert "<name>dfs.replication</name><value>2</value>" in files[host]["hdfs-site.xml"]


def test_spark_is_a_standalone_cluster_on_pinned_ports(run: dict) -> None:
    addr, files = run["addr"], run["files"]
    master = f"spark://{addr['spark-master-1']}:7077"
    conf = dict(line.split(" ", 1) for line in files["spark-master-1"]["spark-defaults.conf"].splitlines()
                if line and not line.startswith("#"))
    assert conf["spark.master"] == master
    assert conf["spark.driver.port"] == "40000" and conf["spark.blockManager.port"] == "40100"
    assert conf["spark.port.maxRetries"] == "99"
    assert conf["spark.cassandra.connection.host"] == ",".join(addr[f"cassandra-{i}"] for i in (1, 2, 3))
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith("IAMInstanceCredentialsProvider")
    assert "spark.hadoop.fs.s3a.secret.key" not in conf
    master_unit = files["spark-master-1"]["stockafolio-spark-master.service"]
    assert "org.apache.spark.deploy.master.Master" in master_unit
    for host in ("spark-worker-1", "spark-worker-2"):
        unit = files[host]["stockafolio-spark-worker.service"]
        assert "org.apache.spark.deploy.worker.Worker" in unit and f'"{master}"' in unit
    streaming = files["spark-master-1"]["stockafolio-streaming.service"]
    assert f'"--master" "{master}"' in streaming and "/streaming.conf" in streaming


def test_nginx_spreads_over_both_web_hosts_sticky(run: dict) -> None:
    addr, files = run["addr"], run["files"]
    for host in ("web-1", "web-2"):
        site = files[host]["stockafolio.conf"]
        upstream = re.search(r"upstream stockafolio_web \{(.*?)\}", site, re.S).group(1)
        assert "ip_hash;" in upstream
        assert re.findall(r"server (\S+) ", upstream) == [f"{addr['web-1']}:8001", f"{addr['web-2']}:8001"]
        assert f"listen {addr[host]}:8000;" in site and "real_ip_header X-Forwarded-For;" in site
        unit = files[host]["stockafolio-webapp.service"]
        assert f'"--host" "{addr[host]}" "--port" "8001"' in unit and '"--secure-cookies"' in unit
