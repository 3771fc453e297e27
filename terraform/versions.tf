# Pinned so a plan made today is reproducible: Terraform/OpenTofu 1.9+ (optional() attributes,
# cross-variable validation) and the 6.x line of the AWS provider (per-resource `region`, the
# aws_vpc_security_group_*_rule resources).
terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  # Every resource carries these; the instances add stockafolio_role, which the Ansible
  # inventory (ansible/inventories/aws/aws_ec2.yml) groups hosts by.
  default_tags {
    tags = merge(var.tags, { stockafolio_cluster = var.name })
  }
}
