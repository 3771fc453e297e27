# Stockafolio on EC2: one VPC, every instance in a private subnet, the web tier reached only through
# an HTTPS load balancer, the trade archive in an encrypted S3 bucket. Ansible configures the
# instances afterwards, finding them by their stockafolio_role tag (see README.md).

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_ami" "debian" {
  count       = var.ami_id == "" ? 1 : 0
  most_recent = true
  owners      = ["136693071363"] # Debian's official AWS account

  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  azs            = var.availability_zones
  account_id     = data.aws_caller_identity.current.account_id
  partition      = data.aws_partition.current.partition
  ami            = var.ami_id != "" ? var.ami_id : data.aws_ami.debian[0].id
  archive_bucket = var.archive_bucket_name != "" ? var.archive_bucket_name : "${var.name}-archive-${local.account_id}"
  flow_log_group = "/stockafolio/${var.name}/vpc-flow-logs"

  # Each instance role (the stockafolio_role tag) and the security group it sits in. NameNode and
  # DataNodes share the hdfs group, Spark master and workers the spark group.
  roles = {
    kafka         = { sg = "kafka", count = var.kafka_count, instance_type = var.kafka_instance_type, volume_size = var.kafka_volume_size }
    cassandra     = { sg = "cassandra", count = var.cassandra_count, instance_type = var.cassandra_instance_type, volume_size = var.cassandra_volume_size }
    spark_master  = { sg = "spark", count = var.spark_master_count, instance_type = var.spark_master_instance_type, volume_size = var.spark_master_volume_size }
    spark_worker  = { sg = "spark", count = var.spark_worker_count, instance_type = var.spark_worker_instance_type, volume_size = var.spark_worker_volume_size }
    hdfs_namenode = { sg = "hdfs", count = var.hdfs_namenode_count, instance_type = var.hdfs_namenode_instance_type, volume_size = var.hdfs_namenode_volume_size }
    hdfs_datanode = { sg = "hdfs", count = var.hdfs_datanode_count, instance_type = var.hdfs_datanode_instance_type, volume_size = var.hdfs_datanode_volume_size }
    web           = { sg = "web", count = var.web_count, instance_type = var.web_instance_type, volume_size = var.web_volume_size }
    generator     = { sg = "generator", count = var.generator_count, instance_type = var.generator_instance_type, volume_size = var.generator_volume_size }
    locust        = { sg = "locust", count = var.locust_count, instance_type = var.locust_instance_type, volume_size = var.locust_volume_size }
  }

  # "kafka-1", "kafka-2", ...: keyed by name, so scaling a role out adds instances and never
  # replaces the existing ones. Instances of a role go round-robin over the availability zones.
  instances = merge([
    for role, r in local.roles : {
      for i in range(r.count) : "${role}-${i + 1}" => {
        role          = role
        sg            = r.sg
        index         = i
        instance_type = r.instance_type
        volume_size   = r.volume_size
      }
    }
  ]...)

  # Who may open a connection to whom inside the VPC, by security group; nothing else gets in.
  # Ports are the defaults of ansible/roles/*/defaults/main.yml. Spark's driver, executor and
  # block-manager ports are random unless pinned: the cluster inventory pins them into 40000-40199.
  intra_rules = [
    { to = "kafka", from = "kafka", from_port = 9092, to_port = 9093, what = "replication and the KRaft controller quorum" },
    { to = "kafka", from = "generator", from_port = 9092, to_port = 9092, what = "the generator produces trades and prices" },
    { to = "kafka", from = "spark", from_port = 9092, to_port = 9092, what = "the streaming job reads trades, writes portfolio events" },
    { to = "kafka", from = "web", from_port = 9092, to_port = 9092, what = "the web app consumes portfolio events" },
    { to = "cassandra", from = "cassandra", from_port = 7000, to_port = 7000, what = "gossip and streaming between nodes" },
    { to = "cassandra", from = "spark", from_port = 9042, to_port = 9042, what = "CQL from the streaming and batch jobs" },
    { to = "cassandra", from = "web", from_port = 9042, to_port = 9042, what = "CQL reads of the web app" },
    { to = "hdfs", from = "hdfs", from_port = 8020, to_port = 8020, what = "DataNode heartbeats and block reports" },
    { to = "hdfs", from = "hdfs", from_port = 9864, to_port = 9867, what = "DataNode replication pipeline, HTTP and IPC" },
    { to = "hdfs", from = "spark", from_port = 8020, to_port = 8020, what = "NameNode RPC of the batch job" },
    { to = "hdfs", from = "spark", from_port = 9864, to_port = 9866, what = "block reads and writes of the batch job" },
    { to = "spark", from = "spark", from_port = 7077, to_port = 7078, what = "master and worker RPC" },
    { to = "spark", from = "spark", from_port = 40000, to_port = 40199, what = "driver, executor and block-manager ports" },
    { to = "web", from = "web", from_port = 8001, to_port = 8001, what = "nginx on each web host proxies to the app on every web host" },
  ]
}

# --- Network ----------------------------------------------------------------------------------

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.name }
}

# The default security group of the VPC: no rules, so nothing can use it by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.name}-default-deny" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = var.name }
}

# Public subnets hold only the load balancer and the NAT gateways; nothing gets a public IP.
resource "aws_subnet" "public" {
  count = length(local.azs)

  vpc_id                  = aws_vpc.this.id
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = false

  tags = { Name = "${var.name}-public-${local.azs[count.index]}", stockafolio_tier = "public" }
}

# Private subnets hold every instance: data tier, Spark, web, generator and Locust.
resource "aws_subnet" "private" {
  count = length(local.azs)

  vpc_id                  = aws_vpc.this.id
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index + 8)
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = false

  tags = { Name = "${var.name}-private-${local.azs[count.index]}", stockafolio_tier = "private" }
}

resource "aws_eip" "nat" {
  count = var.single_nat_gateway ? 1 : length(local.azs)

  domain = "vpc"

  tags = { Name = "${var.name}-nat-${count.index + 1}" }
}

# Outbound only: Debian packages, Maven Central, PyPI, SSM.
resource "aws_nat_gateway" "this" {
  count = var.single_nat_gateway ? 1 : length(local.azs)

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id

  tags       = { Name = "${var.name}-nat-${count.index + 1}" }
  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }

  tags = { Name = "${var.name}-public" }
}

resource "aws_route_table_association" "public" {
  count = length(local.azs)

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  count = length(local.azs)

  vpc_id = aws_vpc.this.id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this[var.single_nat_gateway ? 0 : count.index].id
  }

  tags = { Name = "${var.name}-private-${local.azs[count.index]}" }
}

resource "aws_route_table_association" "private" {
  count = length(local.azs)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# Archive traffic stays off the NAT gateway (no per-GB NAT charge) and inside AWS.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id

  tags = { Name = "${var.name}-s3" }
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = local.flow_log_group
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 600

  tags = { Name = var.name }
}

# --- Security groups --------------------------------------------------------------------------

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Stockafolio load balancer: HTTPS (and HTTP, which redirects) from anywhere"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-alb" }
}

resource "aws_security_group" "role" {
  #checkov:skip=CKV2_AWS_5:Attached by aws_instance.this through local.instances[*].sg, an indirection checkov's graph does not follow.
  for_each = toset(["kafka", "cassandra", "spark", "hdfs", "web", "generator", "locust"])

  name        = "${var.name}-${each.key}"
  description = "Stockafolio ${each.key} instances"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-${each.key}" }
}

# Attached to every instance; holds the SSH rules when ssh_ingress_cidrs is set, none otherwise
# (then Ansible and operators come in through SSM Session Manager).
resource "aws_security_group" "admin" {
  name        = "${var.name}-admin"
  description = "Stockafolio administrative access to every instance"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-admin" }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  #checkov:skip=CKV_AWS_260:Public web entry point; port 443 must be reachable from the internet.
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from the internet"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers with a redirect to HTTPS (aws_lb_listener.http).
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from the internet, redirected to HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_web" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Forward to the web app"
  referenced_security_group_id = aws_security_group.role["web"].id
  ip_protocol                  = "tcp"
  from_port                    = var.web_port
  to_port                      = var.web_port
}

resource "aws_vpc_security_group_ingress_rule" "web_from_alb" {
  security_group_id            = aws_security_group.role["web"].id
  description                  = "Web app from the load balancer"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = var.web_port
  to_port                      = var.web_port
}

resource "aws_vpc_security_group_ingress_rule" "intra" {
  for_each = { for r in local.intra_rules : "${r.to}-from-${r.from}-${r.from_port}" => r }

  security_group_id            = aws_security_group.role[each.value.to].id
  description                  = "${each.value.from_port}-${each.value.to_port} from ${each.value.from}: ${each.value.what}"
  referenced_security_group_id = aws_security_group.role[each.value.from].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.from_port
  to_port                      = each.value.to_port
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = toset(var.ssh_ingress_cidrs)

  security_group_id = aws_security_group.admin.id
  description       = "SSH from an administrative network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}

# Outbound: HTTPS (SSM, S3, Maven Central, PyPI) and HTTP (Debian mirrors) to anywhere, and any
# port inside the VPC, where the receiving group's ingress rules decide.
resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = aws_security_group.role

  security_group_id = each.value.id
  description       = "HTTPS out: SSM, S3, package registries"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "http" {
  for_each = aws_security_group.role

  security_group_id = each.value.id
  description       = "HTTP out: Debian package mirrors"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "vpc" {
  for_each = aws_security_group.role

  security_group_id = each.value.id
  description       = "Anything inside the VPC; the receiving group decides"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
}

# --- Encryption -------------------------------------------------------------------------------

# One customer-managed key for the archive, the EBS volumes and the flow logs.
resource "aws_kms_key" "this" {
  description             = "Stockafolio ${var.name}: S3 archive, EBS volumes, VPC flow logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" means this key only; the account root must administer it.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" means this key only.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" means this key only.
  statement {
    sid = "AccountAdministersKeyAndDelegatesUseToIam"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    actions = [
      "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
      "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
      "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
      "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
    ]
    resources = ["*"]
  }

  statement {
    sid = "CloudWatchLogsEncryptsFlowLogs"
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${local.flow_log_group}"]
    }
  }
}

# --- Trade archive ----------------------------------------------------------------------------

resource "aws_s3_bucket" "archive" {
  #checkov:skip=CKV_AWS_18:Server access logs would need a second bucket; CloudTrail data events cover audit if required.
  #checkov:skip=CKV_AWS_144:The archive is rebuildable from Kafka retention plus HDFS; cross-region replication doubles storage cost.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events; the nightly batch lists the day's prefix.
  bucket        = local.archive_bucket
  force_destroy = var.archive_force_destroy
}

resource "aws_s3_bucket_ownership_controls" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket = aws_s3_bucket.archive.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "archive" {
  bucket = aws_s3_bucket.archive.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true # one KMS call per bucket key, not per object: cheaper at archive volumes
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    id     = "tidy"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = var.archive_noncurrent_version_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.archive]
}

resource "aws_s3_bucket_policy" "archive" {
  bucket = aws_s3_bucket.archive.id
  policy = data.aws_iam_policy_document.archive_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.archive]
}

# A Deny only: refuses any request that is not over TLS.
data "aws_iam_policy_document" "archive_bucket" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.archive.arn, "${aws_s3_bucket.archive.arn}/*"]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# --- IAM --------------------------------------------------------------------------------------

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# One role per instance role, so each gets only what it needs: all get SSM, the generator may
# write the archive, Spark may read it, nobody else touches S3.
resource "aws_iam_role" "instance" {
  for_each = local.roles

  name               = "${var.name}-${replace(each.key, "_", "-")}"
  description        = "Stockafolio ${each.key} instances"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  for_each = aws_iam_role.instance

  role       = each.value.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "instance" {
  for_each = aws_iam_role.instance

  name = each.value.name
  role = each.value.name
}

data "aws_iam_policy_document" "archive_writer" {
  statement {
    sid       = "WriteTradeArchive"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.archive.arn}/${var.archive_prefix}/*"]
  }

  statement {
    sid       = "CheckArchiveBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.archive.arn]
  }

  statement {
    sid       = "EncryptArchiveObjects"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

data "aws_iam_policy_document" "archive_reader" {
  statement {
    sid       = "ReadTradeArchive"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.archive.arn}/${var.archive_prefix}/*"]
  }

  statement {
    sid       = "ListTradeArchive"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.archive.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.archive_prefix, "${var.archive_prefix}/*"]
    }
  }

  statement {
    sid       = "DecryptArchiveObjects"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "archive" {
  for_each = {
    generator    = data.aws_iam_policy_document.archive_writer.json
    spark_master = data.aws_iam_policy_document.archive_reader.json
    spark_worker = data.aws_iam_policy_document.archive_reader.json
  }

  name   = "trade-archive"
  role   = aws_iam_role.instance[each.key].id
  policy = each.value
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = "${var.name}-vpc-flow-logs"
  description        = "Lets VPC flow logs write to their log group"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

# --- Instances --------------------------------------------------------------------------------

resource "aws_instance" "this" {
  for_each = local.instances

  ami                         = local.ami
  instance_type               = each.value.instance_type
  subnet_id                   = aws_subnet.private[each.value.index % length(local.azs)].id
  associate_public_ip_address = false
  vpc_security_group_ids      = [aws_security_group.role[each.value.sg].id, aws_security_group.admin.id]
  iam_instance_profile        = aws_iam_instance_profile.instance[each.value.role].name
  key_name                    = var.key_name == "" ? null : var.key_name
  ebs_optimized               = true
  monitoring                  = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = each.value.volume_size
    encrypted             = true
    kms_key_id            = aws_kms_key.this.arn
    delete_on_termination = true
  }

  tags = {
    Name              = "${var.name}-${each.key}"
    stockafolio_role  = each.value.role
    stockafolio_group = each.value.sg
    stockafolio_index = tostring(each.value.index + 1)
  }

  lifecycle {
    ignore_changes = [ami] # a newer Debian image must not replace running data nodes
  }
}

# --- Load balancer ----------------------------------------------------------------------------

resource "aws_lb" "web" {
  #checkov:skip=CKV2_AWS_28:No WAF yet: the app authenticates every page and socket; add a web ACL before public launch.
  #checkov:skip=CKV_AWS_91:ALB access logs need an SSE-S3 bucket of their own; left out of the default cluster to keep it small.
  name                       = "${var.name}-web"
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = aws_subnet.public[*].id
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  idle_timeout               = var.alb_idle_timeout
}

resource "aws_lb_target_group" "web" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the web app stays inside the VPC's private subnets.
  name                 = "${var.name}-web"
  port                 = var.web_port
  protocol             = "HTTP"
  target_type          = "instance"
  vpc_id               = aws_vpc.this.id
  deregistration_delay = 30

  # Socket.IO: the long-polling handshake and the WebSocket upgrade must reach the same instance.
  stickiness {
    enabled         = true
    type            = "lb_cookie"
    cookie_duration = var.sticky_session_seconds
  }

  health_check {
    enabled             = true
    path                = var.web_health_check_path
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_target_group_attachment" "web" {
  for_each = { for name, i in local.instances : name => i if i.role == "web" }

  target_group_arn = aws_lb_target_group.web.arn
  target_id        = aws_instance.this[each.key].id
  port             = var.web_port
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.web.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.web.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}
