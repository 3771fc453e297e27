output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnets (load balancer, NAT gateways)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets (every instance)."
  value       = aws_subnet.private[*].id
}

output "web_url" {
  description = "HTTPS address of the web app (point a DNS name of the certificate at alb_dns_name)."
  value       = "https://${aws_lb.web.dns_name}"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer, for a CNAME or alias record."
  value       = aws_lb.web.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone of the load balancer, for an alias record."
  value       = aws_lb.web.zone_id
}

output "archive_bucket" {
  description = "Name of the S3 bucket of the trade archive (generator and batch settings)."
  value       = aws_s3_bucket.archive.id
}

output "archive_bucket_arn" {
  description = "ARN of the S3 bucket of the trade archive."
  value       = aws_s3_bucket.archive.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the archive, the EBS volumes and the flow logs."
  value       = aws_kms_key.this.arn
}

output "instances" {
  description = "Every instance by name (kafka-1, ...): role, ID (the SSM target), private IP and availability zone."
  value = {
    for name, i in aws_instance.this : name => {
      role              = i.tags["stockafolio_role"]
      id                = i.id
      private_ip        = i.private_ip
      availability_zone = i.availability_zone
    }
  }
}

# The same hosts as ansible/inventories/aws/aws_ec2.yml finds by tag, as a static Ansible inventory
# (JSON is YAML): `tofu output -json inventory > ansible/inventories/aws/static.json`.
output "inventory" {
  description = "Static Ansible inventory: one group per stockafolio_role, plus hdfs and spark parent groups."
  value = {
    all = {
      vars = { stockafolio_mode = "cluster", stockafolio_cluster = var.name }
      children = merge(
        {
          for role in keys(local.roles) : role => {
            hosts = {
              for name, i in aws_instance.this : name => {
                ansible_host      = i.private_ip
                instance_id       = i.id
                availability_zone = i.availability_zone
              } if i.tags["stockafolio_role"] == role
            }
          }
        },
        {
          hdfs  = { children = { hdfs_namenode = {}, hdfs_datanode = {} } }
          spark = { children = { spark_master = {}, spark_worker = {} } }
        },
      )
    }
  }
}
