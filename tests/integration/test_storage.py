"""HDFS over its RPC protocol (hdfs-native) and S3 over HTTP (boto3), from Python."""

from __future__ import annotations

from hdfs_native import Client

from stockafolio import s3 as s3lib
from stockafolio.settings import Endpoints


def s3_client(endpoints: Endpoints):
    return s3lib.client(endpoints.s3)


def test_hdfs_write_read_delete(endpoints: Endpoints, unique: str) -> None:
    client = Client(endpoints.hdfs.url)
    path = f"/tests/{unique}/hello.txt"
    payload = b"stockafolio\n" * 1000
    with client.create(path) as f:
        f.write(payload)
    with client.read(path) as f:
        assert f.read() == payload
    assert client.get_file_info(path).length == len(payload)
    client.delete(f"/tests/{unique}", recursive=True)


def test_s3_put_get_list(endpoints: Endpoints, unique: str) -> None:
    s3 = s3_client(endpoints)
    bucket = unique.replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="trades/date=2026-11-20/part-0.jsonl", Body=b'{"a": 1}\n')
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="trades/")["Contents"]]
    body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    s3.delete_object(Bucket=bucket, Key=keys[0])
    s3.delete_bucket(Bucket=bucket)
    assert keys == ["trades/date=2026-11-20/part-0.jsonl"] and body == b'{"a": 1}\n'


def test_archive_bucket_exists_and_ensure_is_idempotent(endpoints: Endpoints, unique: str) -> None:
    bucket = unique.replace("_", "-")
    assert s3lib.ensure_bucket(endpoints.s3, endpoints.s3.archive_bucket) is False  # made by run
    assert s3lib.ensure_bucket(endpoints.s3, bucket) is True
    assert s3lib.ensure_bucket(endpoints.s3, bucket) is False
    s3_client(endpoints).delete_bucket(Bucket=bucket)
