"""S3 client for the archive: the local MinIO or AWS S3, from the same endpoint settings."""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stockafolio.errors import ServiceUnavailable, StockafolioError
from stockafolio.settings import S3Endpoint


def client(endpoint: S3Endpoint):  # -> mypy_boto3_s3.S3Client, left untyped to avoid the stub dep
    """Keys from the endpoint when it has them (MinIO); without keys boto3's default chain, i.e. the
    instance profile of an EC2 host (the cluster's `endpoints/s3.json` leaves them empty)."""
    keys = ({"aws_access_key_id": endpoint.access_key, "aws_secret_access_key": endpoint.secret_key}
            if endpoint.access_key else {})
    return boto3.client(
        "s3", endpoint_url=endpoint.endpoint_url or None, region_name=endpoint.region, **keys,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                      connect_timeout=5, read_timeout=30),
    )


def ensure_bucket(endpoint: S3Endpoint, bucket: str) -> bool:
    """Create `bucket` unless it exists; True when it was created."""
    s3 = client(endpoint)
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise StockafolioError(f"S3 {endpoint.endpoint_url} refused bucket {bucket!r}: {exc}") from None
    except BotoCoreError as exc:
        raise ServiceUnavailable("S3", f"{endpoint.endpoint_url}: {exc}") from None
    s3.create_bucket(Bucket=bucket)
    return True
