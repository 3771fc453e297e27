# --- Where and what ---------------------------------------------------------------------------

variable "name" {
  type        = string
  description = "Name of this cluster: prefixes every resource name and is the stockafolio_cluster tag the Ansible inventory filters on."
  default     = "stockafolio"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 characters of lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "AWS region to build the cluster in."
  default     = "us-east-1"
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every resource (the provider's default_tags)."
  default     = { Project = "stockafolio" }
}

# --- Network ----------------------------------------------------------------------------------

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of the VPC; split into one public and one private /20 per availability zone (up to 8 zones)."
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 18
    error_message = "vpc_cidr must be a valid IPv4 CIDR block of /18 or larger."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Availability zones of the region to spread subnets and instances over, in order; one public and one private subnet each. Fixed names, so AWS adding a zone never moves a subnet."
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 8
    error_message = "availability_zones must list 2 to 8 zones (the load balancer needs at least 2)."
  }
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway for all private subnets (cheaper) instead of one per availability zone (survives an AZ outage)."
  default     = true
}

variable "ssh_ingress_cidrs" {
  type        = list(string)
  description = "CIDR blocks allowed to reach port 22 on the instances (e.g. a VPN range). Empty: no SSH ingress at all; reach the hosts through SSM Session Manager."
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_ingress_cidrs : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "ssh_ingress_cidrs must be IPv4 CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "flow_log_retention_days" {
  type        = number
  description = "Days to keep the VPC flow logs in CloudWatch Logs."
  default     = 365
}

# --- Load balancer ----------------------------------------------------------------------------

variable "certificate_arn" {
  type        = string
  description = "ARN of the ACM certificate the HTTPS listener of the load balancer presents."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN (arn:aws:acm:...)."
  }
}

variable "ssl_policy" {
  type        = string
  description = "TLS policy of the HTTPS listener (TLS 1.2 and 1.3 only)."
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "web_port" {
  type        = number
  description = "Port the web app listens on; the load balancer forwards to it."
  default     = 8000
}

variable "web_health_check_path" {
  type        = string
  description = "HTTP path the load balancer probes on each web instance; it must answer 200."
  default     = "/healthz"
}

variable "sticky_session_seconds" {
  type        = number
  description = "Lifetime of the load balancer's stickiness cookie. Socket.IO needs every request of a session (long-polling, then the WebSocket upgrade) on the same web instance."
  default     = 86400
}

variable "alb_idle_timeout" {
  type        = number
  description = "Seconds an idle connection (a quiet WebSocket) stays open at the load balancer; keep it above the Socket.IO ping interval."
  default     = 120
}

variable "alb_deletion_protection" {
  type        = bool
  description = "Protect the load balancer from deletion. Set it to false and apply before `destroy`."
  default     = true
}

# --- Archive ----------------------------------------------------------------------------------

variable "archive_bucket_name" {
  type        = string
  description = "Name of the S3 bucket of the trade archive. Empty: <name>-archive-<account id>."
  default     = ""
}

variable "archive_prefix" {
  type        = string
  description = "Key prefix the generators write the trade archive under (generator ArchiveSettings.prefix)."
  default     = "trades"
}

variable "archive_noncurrent_version_days" {
  type        = number
  description = "Days an overwritten or deleted archive object's old version is kept before it expires."
  default     = 30
}

variable "archive_force_destroy" {
  type        = bool
  description = "Let `destroy` delete the archive bucket even when it holds objects. Leave false unless the archive is disposable."
  default     = false
}

# --- Instances --------------------------------------------------------------------------------

variable "key_name" {
  type        = string
  description = "EC2 key pair for SSH, which Ansible tunnels through SSM (AWS-StartSSHSession). Empty: no key pair."
  default     = ""
}

variable "ami_id" {
  type        = string
  description = "AMI for every instance. Empty: the newest official Debian 12 amd64 image."
  default     = ""
}

variable "kafka_count" {
  type        = number
  description = "Number of Kafka brokers (KRaft, combined broker+controller)."
  default     = 3

  validation {
    condition     = var.kafka_count >= 0 && floor(var.kafka_count) == var.kafka_count
    error_message = "kafka_count must be a whole number >= 0."
  }
}

variable "kafka_instance_type" {
  type        = string
  description = "EC2 instance type of the kafka instances."
  default     = "m6i.large"
}

variable "kafka_volume_size" {
  type        = number
  description = "Root volume size of each kafka instance, in GiB (gp3, encrypted)."
  default     = 200
}

variable "cassandra_count" {
  type        = number
  description = "Number of Cassandra nodes."
  default     = 3

  validation {
    condition     = var.cassandra_count >= 0 && floor(var.cassandra_count) == var.cassandra_count
    error_message = "cassandra_count must be a whole number >= 0."
  }
}

variable "cassandra_instance_type" {
  type        = string
  description = "EC2 instance type of the cassandra instances."
  default     = "m6i.xlarge"
}

variable "cassandra_volume_size" {
  type        = number
  description = "Root volume size of each cassandra instance, in GiB (gp3, encrypted)."
  default     = 200
}

variable "spark_master_count" {
  type        = number
  description = "Number of Spark standalone masters (0 or 1; the streaming and batch drivers run here)."
  default     = 1

  validation {
    condition     = contains([0, 1], var.spark_master_count)
    error_message = "spark_master_count must be 0 or 1."
  }
}

variable "spark_master_instance_type" {
  type        = string
  description = "EC2 instance type of the spark master instances."
  default     = "m6i.large"
}

variable "spark_master_volume_size" {
  type        = number
  description = "Root volume size of each spark master instance, in GiB (gp3, encrypted)."
  default     = 50
}

variable "spark_worker_count" {
  type        = number
  description = "Number of Spark standalone workers."
  default     = 2

  validation {
    condition     = var.spark_worker_count >= 0 && floor(var.spark_worker_count) == var.spark_worker_count
    error_message = "spark_worker_count must be a whole number >= 0."
  }
}

variable "spark_worker_instance_type" {
  type        = string
  description = "EC2 instance type of the spark worker instances."
  default     = "m6i.xlarge"
}

variable "spark_worker_volume_size" {
  type        = number
  description = "Root volume size of each spark worker instance, in GiB (gp3, encrypted)."
  default     = 100
}

variable "hdfs_namenode_count" {
  type        = number
  description = "Number of HDFS NameNodes (0 or 1; no HA)."
  default     = 1

  validation {
    condition     = contains([0, 1], var.hdfs_namenode_count)
    error_message = "hdfs_namenode_count must be 0 or 1."
  }
}

variable "hdfs_namenode_instance_type" {
  type        = string
  description = "EC2 instance type of the hdfs namenode instances."
  default     = "m6i.large"
}

variable "hdfs_namenode_volume_size" {
  type        = number
  description = "Root volume size of each hdfs namenode instance, in GiB (gp3, encrypted)."
  default     = 50
}

variable "hdfs_datanode_count" {
  type        = number
  description = "Number of HDFS DataNodes."
  default     = 3

  validation {
    condition     = var.hdfs_datanode_count >= 0 && floor(var.hdfs_datanode_count) == var.hdfs_datanode_count
    error_message = "hdfs_datanode_count must be a whole number >= 0."
  }
}

variable "hdfs_datanode_instance_type" {
  type        = string
  description = "EC2 instance type of the hdfs datanode instances."
  default     = "m6i.large"
}

variable "hdfs_datanode_volume_size" {
  type        = number
  description = "Root volume size of each hdfs datanode instance, in GiB (gp3, encrypted)."
  default     = 500
}

variable "web_count" {
  type        = number
  description = "Number of web app (Flask + Socket.IO) instances behind the load balancer."
  default     = 2

  validation {
    condition     = var.web_count >= 0 && floor(var.web_count) == var.web_count
    error_message = "web_count must be a whole number >= 0."
  }
}

variable "web_instance_type" {
  type        = string
  description = "EC2 instance type of the web instances."
  default     = "t3.medium"
}

variable "web_volume_size" {
  type        = number
  description = "Root volume size of each web instance, in GiB (gp3, encrypted)."
  default     = 30
}

variable "generator_count" {
  type        = number
  description = "Number of trade generators (they also write the S3 archive)."
  default     = 1

  validation {
    condition     = var.generator_count >= 0 && floor(var.generator_count) == var.generator_count
    error_message = "generator_count must be a whole number >= 0."
  }
}

variable "generator_instance_type" {
  type        = string
  description = "EC2 instance type of the generator instances."
  default     = "m6i.large"
}

variable "generator_volume_size" {
  type        = number
  description = "Root volume size of each generator instance, in GiB (gp3, encrypted)."
  default     = 30
}

variable "locust_count" {
  type        = number
  description = "Number of Locust load generators."
  default     = 1

  validation {
    condition     = var.locust_count >= 0 && floor(var.locust_count) == var.locust_count
    error_message = "locust_count must be a whole number >= 0."
  }
}

variable "locust_instance_type" {
  type        = string
  description = "EC2 instance type of the locust instances."
  default     = "c6i.large"
}

variable "locust_volume_size" {
  type        = number
  description = "Root volume size of each locust instance, in GiB (gp3, encrypted)."
  default     = 30
}
