"""A real SeaweedFS S3 store on loopback with one admin and one read-only identity per tenant."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

HERE = Path(__file__).resolve().parent
COLLECTIONS_ROOT = HERE.parents[1] / "collections"
for path in (str(HERE), str(COLLECTIONS_ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)

from seaweed import REGION, Identity, SeaweedS3, wait_writable  # noqa: E402

TENANTS = {"team-a": "llmops-team-a", "team-b": "llmops-team-b"}


def _key() -> str:
    return secrets.token_hex(10).upper()


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    identities = {"admin": Identity("admin", _key(), secrets.token_urlsafe(24), ["Admin", "Read", "List", "Tagging", "Write"])}
    for tenant, bucket in TENANTS.items():
        identities[tenant] = Identity(f"{tenant}-read", _key(), secrets.token_urlsafe(24), [f"Read:{bucket}", f"List:{bucket}"])
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"), identities).start()
    try:
        admin = boto3_client(server, "admin")
        for bucket in TENANTS.values():
            admin.create_bucket(Bucket=bucket)
            wait_writable(admin, bucket)
        yield server
    finally:
        server.stop()


def boto3_client(server: SeaweedS3, identity: str):
    ident = server.identities[identity]
    return boto3.client(
        "s3", endpoint_url=server.endpoint_url, region_name=REGION,
        aws_access_key_id=ident.access_key, aws_secret_access_key=ident.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )
