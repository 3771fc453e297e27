"""The security promises of terraform/, asserted on its parsed HCL (python-hcl2).

No provider, no AWS credentials, no network: the AWS provider cannot be installed here, so neither
`tofu validate` nor `plan` can run. checkov scans the generic rules; these tests pin the ones the
design promises (terraform/README.md): who may reach what, where instances sit, how data is
encrypted, what each IAM role may do, and the tags the Ansible inventory is built from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import jinja2
import pytest
import yaml
from hcl2.utils import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "terraform"
INVENTORY = REPO / "ansible" / "inventories" / "aws" / "aws_ec2.yml"
OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
OPEN_CIDRS = {"0.0.0.0/0", "::/0"}

# role (the stockafolio_role tag) -> (default count, default instance type), as documented.
ROLE_DEFAULTS = {
    "kafka": (3, "m6i.large"),
    "cassandra": (3, "m6i.xlarge"),
    "spark_master": (1, "m6i.large"),
    "spark_worker": (2, "m6i.xlarge"),
    "hdfs_namenode": (1, "m6i.large"),
    "hdfs_datanode": (3, "m6i.large"),
    "web": (2, "t3.medium"),
    "generator": (1, "m6i.large"),
    "locust": (1, "c6i.large"),
}
ALLOWED_MANAGED_POLICIES = {"AmazonSSMManagedInstanceCore"}


@dataclass(frozen=True)
class Config:
    """Every block of every .tf file in terraform/, merged."""

    resources: dict[str, dict[str, dict[str, Any]]]  # type -> name -> body
    data: dict[str, dict[str, dict[str, Any]]]
    variables: dict[str, dict[str, Any]]
    locals: dict[str, Any]
    terraform: dict[str, Any]
    outputs: dict[str, dict[str, Any]]

    def of(self, rtype: str) -> dict[str, dict[str, Any]]:
        return self.resources.get(rtype, {})


def _merge_labelled(blocks: list[dict[str, Any]], into: dict[str, dict[str, dict[str, Any]]]) -> None:
    for block in blocks:
        for rtype, named in block.items():
            for name, body in named.items():
                assert name not in into.setdefault(rtype, {}), f"{rtype}.{name} is declared twice"
                into[rtype][name] = body


@pytest.fixture(scope="module")
def tf() -> Config:
    files = sorted(TF_DIR.glob("*.tf"))
    assert {f.name for f in files} >= {"versions.tf", "main.tf", "variables.tf", "outputs.tf"}
    resources: dict[str, dict[str, dict[str, Any]]] = {}
    data: dict[str, dict[str, dict[str, Any]]] = {}
    variables: dict[str, dict[str, Any]] = {}
    local_values: dict[str, Any] = {}
    terraform: dict[str, Any] = {}
    outputs: dict[str, dict[str, Any]] = {}
    for path in files:
        parsed = hcl2.loads(path.read_text(), serialization_options=OPTIONS)
        _merge_labelled(parsed.get("resource", []), resources)
        _merge_labelled(parsed.get("data", []), data)
        for block in parsed.get("variable", []):
            variables.update(block)
        for block in parsed.get("locals", []):
            local_values.update(block)
        for block in parsed.get("terraform", []):
            terraform.update(block)
        for block in parsed.get("output", []):
            outputs.update(block)
    return Config(resources, data, variables, local_values, terraform, outputs)


def _ref(value: Any, pattern: str) -> bool:
    """Whether an HCL expression is exactly the interpolation ${<pattern>}."""
    return isinstance(value, str) and re.fullmatch(r"\$\{" + pattern + r"\}", value) is not None


def _ingress_rules(tf: Config) -> dict[str, dict[str, Any]]:
    return tf.of("aws_vpc_security_group_ingress_rule")


def _port(value: Any, tf: Config) -> int:
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\$\{var\.(\w+)\}", str(value))
    assert match, f"a port is a literal or a variable, got {value!r}"
    return int(tf.variables[match[1]]["default"])


def _port_ranges(rule: dict[str, Any], tf: Config) -> list[tuple[int, int]]:
    """The (from, to) port ranges a rule opens; for_each rules over local.intra_rules open each entry's."""
    if str(rule.get("ip_protocol")) in {"-1", "all"}:
        return [(0, 65535)]
    if rule.get("from_port") == "${each.value.from_port}":
        assert "local.intra_rules" in rule["for_each"], "for_each port rules iterate local.intra_rules"
        return [(r["from_port"], r["to_port"]) for r in tf.locals["intra_rules"]]
    return [(_port(rule["from_port"], tf), _port(rule["to_port"], tf))]


def _policy_statements(tf: Config) -> list[tuple[str, dict[str, Any]]]:
    docs = tf.data.get("aws_iam_policy_document", {})
    return [(name, st) for name, doc in docs.items() for st in doc.get("statement", [])]


def _allows(statement: dict[str, Any]) -> bool:
    return statement.get("effect", "Allow") == "Allow"


# --- Structure -----------------------------------------------------------------------------------


def test_terraform_and_the_aws_provider_are_pinned(tf: Config) -> None:
    assert re.match(r">= ?1\.\d+", tf.terraform["required_version"])
    aws = tf.terraform["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert re.fullmatch(r"~> ?\d+\.\d+(\.\d+)?", aws["version"]), aws["version"]


def test_every_variable_is_typed_and_described(tf: Config) -> None:
    for name, body in tf.variables.items():
        assert body.get("type"), f"variable {name} has no type"
        assert len(body.get("description", "")) >= 10, f"variable {name} has no description"


def test_outputs_are_described_and_include_the_inventory(tf: Config) -> None:
    assert {"inventory", "instances", "archive_bucket", "alb_dns_name"} <= set(tf.outputs)
    for name, body in tf.outputs.items():
        assert len(body.get("description", "")) >= 10, f"output {name} has no description"


@pytest.mark.parametrize(("role", "count", "instance_type"),
                         [(r, c, t) for r, (c, t) in ROLE_DEFAULTS.items()])
def test_counts_and_sizes_are_variables_with_the_documented_defaults(
        tf: Config, role: str, count: int, instance_type: str) -> None:
    assert tf.variables[f"{role}_count"]["default"] == count
    assert tf.variables[f"{role}_instance_type"]["default"] == instance_type
    assert isinstance(tf.variables[f"{role}_volume_size"]["default"], int)
    wiring = tf.locals["roles"][role]
    assert wiring["count"] == f"${{var.{role}_count}}"
    assert wiring["instance_type"] == f"${{var.{role}_instance_type}}"
    assert wiring["volume_size"] == f"${{var.{role}_volume_size}}"


def test_the_roles_are_exactly_the_documented_ones(tf: Config) -> None:
    assert set(tf.locals["roles"]) == set(ROLE_DEFAULTS)


def test_every_reference_names_something_declared(tf: Config) -> None:
    # `tofu validate` needs the AWS provider, which cannot be installed offline; this catches the
    # typos it would have caught in names of variables, locals, resources and data sources.
    code = "\n".join(re.sub(r"#.*", "", p.read_text()) for p in TF_DIR.glob("*.tf"))
    assert set(re.findall(r"\bvar\.(\w+)", code)) <= set(tf.variables)
    assert set(re.findall(r"\blocal\.(\w+)", code)) <= set(tf.locals)
    declared = {(t, n) for t, named in tf.data.items() for n in named}
    assert set(re.findall(r"\bdata\.(aws_\w+)\.(\w+)", code)) <= declared
    declared = {(t, n) for t, named in tf.resources.items() for n in named}
    assert set(re.findall(r"(?<![.\w])(aws_\w+)\.(\w+)", code)) <= declared


# --- Network exposure ----------------------------------------------------------------------------


def test_rules_are_separate_resources_not_inline_blocks(tf: Config) -> None:
    # One resource per rule keeps every rule visible to these tests and to checkov.
    assert not tf.of("aws_security_group_rule")
    for name, sg in tf.of("aws_security_group").items():
        assert "ingress" not in sg and "egress" not in sg, f"aws_security_group.{name} has inline rules"


def test_only_the_load_balancer_takes_traffic_from_anywhere_and_only_on_80_and_443(tf: Config) -> None:
    open_ports = set()
    for name, rule in _ingress_rules(tf).items():
        cidrs = {rule.get("cidr_ipv4"), rule.get("cidr_ipv6")} & OPEN_CIDRS
        if not cidrs:
            continue
        on_alb = _ref(rule["security_group_id"], r"aws_security_group\.alb\.id")
        assert on_alb, f"{name} opens a group other than the ALB's to anyone"
        ranges = _port_ranges(rule, tf)
        assert all(lo == hi and lo in {80, 443} for lo, hi in ranges), f"{name} opens {ranges} to anyone"
        open_ports.update(lo for lo, _ in ranges)
    assert open_ports == {80, 443}


def test_every_other_ingress_names_its_source_group_or_the_ssh_cidrs(tf: Config) -> None:
    for name, rule in _ingress_rules(tf).items():
        cidr = rule.get("cidr_ipv4") or rule.get("cidr_ipv6")
        if cidr in OPEN_CIDRS:
            continue
        if cidr is not None:
            assert (name, cidr) == ("ssh", "${each.value}"), f"{name}: a CIDR other than ssh_ingress_cidrs"
        else:
            source = rule.get("referenced_security_group_id")
            assert _ref(source, r"aws_security_group\.[\w\[\]\.\"]+\.id"), f"{name}: source {source}"


def test_ssh_is_only_open_to_the_variable_cidrs(tf: Config) -> None:
    for name, rule in _ingress_rules(tf).items():
        if any(lo <= 22 <= hi for lo, hi in _port_ranges(rule, tf)):
            assert rule["for_each"] == "${toset(var.ssh_ingress_cidrs)}", f"{name} opens port 22"
            assert rule["cidr_ipv4"] == "${each.value}"
            assert (rule["from_port"], rule["to_port"]) == (22, 22)
    ssh = tf.variables["ssh_ingress_cidrs"]
    assert ssh["default"] == [], "no SSH by default: operators come in through SSM"
    assert "0.0.0.0/0" in ssh["validation"][0]["condition"]


def test_intra_vpc_rules_stay_off_port_22_and_name_known_groups(tf: Config) -> None:
    groups = set(tf.of("aws_security_group")["role"]["for_each"].split('"')[1::2])
    for rule in tf.locals["intra_rules"]:
        assert {rule["to"], rule["from"]} <= groups, rule
        assert not rule["from_port"] <= 22 <= rule["to_port"], rule
        assert rule["to_port"] - rule["from_port"] < 256, f"port range too wide: {rule}"


def test_instances_sit_in_private_subnets_without_public_ips(tf: Config) -> None:
    assert tf.of("aws_instance"), "no instances"
    for name, inst in tf.of("aws_instance").items():
        assert _ref(inst["subnet_id"], r"aws_subnet\.private\[.+\]\.id"), f"aws_instance.{name} subnet"
        assert inst["associate_public_ip_address"] is False, f"aws_instance.{name} gets a public IP"
    for name, subnet in tf.of("aws_subnet").items():
        assert subnet.get("map_public_ip_on_launch") is False, f"aws_subnet.{name} hands out public IPs"
    for name, eip in tf.of("aws_eip").items():
        assert "instance" not in eip and "network_interface" not in eip, f"aws_eip.{name} is on an instance"


def test_the_private_subnets_route_out_through_nat_only(tf: Config) -> None:
    for route in tf.of("aws_route_table")["private"]["route"]:
        assert "gateway_id" not in route, "a private route table points at the internet gateway"
        assert route["nat_gateway_id"].startswith("${aws_nat_gateway.")


# --- Instances -----------------------------------------------------------------------------------


def test_instances_require_imdsv2(tf: Config) -> None:
    for name, inst in tf.of("aws_instance").items():
        (meta,) = inst["metadata_options"]
        assert meta["http_tokens"] == "required", f"aws_instance.{name} allows IMDSv1"
        assert meta["http_put_response_hop_limit"] == 1


def test_every_volume_is_encrypted(tf: Config) -> None:
    for name, inst in tf.of("aws_instance").items():
        devices = inst.get("root_block_device", []) + inst.get("ebs_block_device", [])
        assert devices and all(d.get("encrypted") is True for d in devices), f"aws_instance.{name}"
    for name, volume in tf.of("aws_ebs_volume").items():
        assert volume.get("encrypted") is True, f"aws_ebs_volume.{name}"


def test_every_instance_carries_its_role_tag(tf: Config) -> None:
    for name, inst in tf.of("aws_instance").items():
        assert inst["tags"].get("stockafolio_role"), f"aws_instance.{name} has no stockafolio_role tag"
        assert inst["iam_instance_profile"].startswith("${aws_iam_instance_profile.")
    assert tf.of("aws_instance")["this"]["tags"]["stockafolio_role"] == "${each.value.role}"
    assert tf.of("aws_instance")["this"]["for_each"] == "${local.instances}"


# --- Archive bucket and encryption ---------------------------------------------------------------


def _for_bucket(tf: Config, rtype: str, bucket: str) -> dict[str, Any]:
    matches = [b for b in tf.of(rtype).values() if b["bucket"] == f"${{aws_s3_bucket.{bucket}.id}}"]
    assert len(matches) == 1, f"aws_s3_bucket.{bucket} needs exactly one {rtype}"
    return matches[0]


def test_every_bucket_is_encrypted_versioned_and_not_public(tf: Config) -> None:
    assert "archive" in tf.of("aws_s3_bucket")
    for bucket in tf.of("aws_s3_bucket"):
        (rule,) = _for_bucket(tf, "aws_s3_bucket_server_side_encryption_configuration", bucket)["rule"]
        (sse,) = rule["apply_server_side_encryption_by_default"]
        assert sse["sse_algorithm"] in {"aws:kms", "aws:kms:dsse"}
        (versioning,) = _for_bucket(tf, "aws_s3_bucket_versioning", bucket)["versioning_configuration"]
        assert versioning["status"] == "Enabled"
        block = _for_bucket(tf, "aws_s3_bucket_public_access_block", bucket)
        flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        assert all(block[f] is True for f in flags), block


def test_the_kms_key_rotates(tf: Config) -> None:
    for name, key in tf.of("aws_kms_key").items():
        assert key["enable_key_rotation"] is True, f"aws_kms_key.{name}"


# --- IAM -----------------------------------------------------------------------------------------


def test_no_policy_allows_wildcard_actions(tf: Config) -> None:
    # Deny statements may say s3:* (the bucket's deny-without-TLS); an Allow never grants a whole service.
    statements = _policy_statements(tf)
    assert statements
    for doc, st in statements:
        assert "not_actions" not in st, f"{doc}: NotAction grants everything else"
        if _allows(st):
            wild = [a for a in st["actions"] if a == "*" or a.endswith(":*")]
            assert not wild, f"{doc} allows {wild}"
    for name, policy in tf.of("aws_iam_role_policy").items():
        # Inline JSON would dodge the statement checks above: policies come from policy documents.
        from_document = "data.aws_iam_policy_document." in str(policy["policy"])
        assert from_document or policy["policy"] == "${each.value}", f"aws_iam_role_policy.{name}"


def test_s3_access_is_scoped_to_the_archive_bucket(tf: Config) -> None:
    for doc, st in _policy_statements(tf):
        if _allows(st) and any(a.startswith("s3:") for a in st["actions"]):
            for resource in st["resources"]:
                assert resource.startswith("${aws_s3_bucket.archive.arn}"), f"{doc} grants S3 on {resource}"


def test_only_the_generator_writes_and_only_spark_reads_the_archive(tf: Config) -> None:
    grants = tf.of("aws_iam_role_policy")["archive"]["for_each"]
    assert grants == {
        "generator": "${data.aws_iam_policy_document.archive_writer.json}",
        "spark_master": "${data.aws_iam_policy_document.archive_reader.json}",
        "spark_worker": "${data.aws_iam_policy_document.archive_reader.json}",
    }
    reader = tf.data["aws_iam_policy_document"]["archive_reader"]
    reads = {a for st in reader["statement"] for a in st["actions"]}
    assert not {a for a in reads if a.startswith("s3:") and a not in {"s3:GetObject", "s3:ListBucket"}}


def test_only_allowed_managed_policies_are_attached(tf: Config) -> None:
    for name, attachment in tf.of("aws_iam_role_policy_attachment").items():
        policy = attachment["policy_arn"].rsplit("/", 1)[-1]
        assert policy in ALLOWED_MANAGED_POLICIES, f"aws_iam_role_policy_attachment.{name}: {policy}"


# --- Load balancer -------------------------------------------------------------------------------


def test_the_load_balancer_serves_https_and_redirects_http(tf: Config) -> None:
    listeners = tf.of("aws_lb_listener")
    https, http = listeners["https"], listeners["http"]
    assert (https["port"], https["protocol"]) == (443, "HTTPS")
    assert https["certificate_arn"] == "${var.certificate_arn}"
    assert "TLS13" in tf.variables["ssl_policy"]["default"]
    (redirect,) = http["default_action"][0]["redirect"]
    assert http["default_action"][0]["type"] == "redirect"
    assert (redirect["protocol"], redirect["port"], redirect["status_code"]) == ("HTTPS", "443", "HTTP_301")
    assert set(listeners) == {"https", "http"}


def test_the_load_balancer_keeps_socketio_sessions_sticky(tf: Config) -> None:
    (sticky,) = tf.of("aws_lb_target_group")["web"]["stickiness"]
    assert sticky["enabled"] is True
    assert sticky["type"] == "lb_cookie"
    alb = tf.of("aws_lb")["web"]
    assert alb["drop_invalid_header_fields"] is True
    assert alb["subnets"] == "${aws_subnet.public[*].id}"


# --- checkov and the Ansible inventory -----------------------------------------------------------


def test_every_checkov_skip_says_why() -> None:
    skips = [line for path in TF_DIR.glob("*.tf") for line in path.read_text().splitlines()
             if "checkov:skip" in line]
    assert skips
    for line in skips:
        assert re.search(r"#checkov:skip=CKV2?_AWS_\d+:\S.{20,}", line), f"unjustified skip: {line.strip()}"


def test_the_inventory_groups_hosts_by_the_role_tag(tf: Config) -> None:
    inventory = yaml.safe_load(INVENTORY.read_text())
    assert inventory["plugin"] == "amazon.aws.aws_ec2"
    assert inventory["keyed_groups"] == [{"key": "tags.stockafolio_role", "prefix": "", "separator": ""}]
    assert inventory["filters"]["tag:stockafolio_cluster"] == tf.variables["name"]["default"]
    assert inventory["regions"] == [tf.variables["region"]["default"]]
    env = jinja2.Environment(autoescape=False)  # noqa: S701 - renders inventory values, not HTML
    for expression in [*inventory["groups"].values(), *inventory["compose"].values()]:
        env.compile_expression(expression)


def test_web_hosts_reach_each_others_app_port_for_the_sticky_upstream(tf: Config) -> None:
    """nginx on every web host lists the app of every web host (ansible/roles/nginx), so the web group
    must accept the app port from itself, and from nothing else."""
    defaults = (Path(__file__).resolve().parents[2] / "ansible/roles/webapp/defaults/main.yml").read_text()
    app_port = yaml.safe_load(defaults)["webapp_port"]
    into_web = [r for r in tf.locals["intra_rules"] if r["to"] == "web"]
    assert [(r["from"], r["from_port"], r["to_port"]) for r in into_web] == [("web", app_port, app_port)]
