"""Push a model directory to an S3 store with the `minio` SDK: files first, the manifest last.

A version is immutable: the manifest is the commit point (written after every file), a re-push
of the same files is a no-op, and a different model under an existing name/version is refused.
"""

from __future__ import annotations

import io
import json
import re
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import certifi
import urllib3
from minio import Minio
from minio.error import S3Error

from llmops.artifacts.manifest import build_manifest, same_content

MANIFEST_OBJECT = "manifest.json"
# Multipart above this size; parts of this size (S3's minimum is 5 MiB).
PART_SIZE = 64 * 1024 * 1024


class PushError(RuntimeError):
    """A push that must not happen or did not complete; the message names the object or field."""


BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_bucket_name(bucket: str) -> None:
    """S3's bucket naming rules, checked before any request so a bad name fails by name."""
    if not BUCKET_PATTERN.match(bucket or "") or ".." in bucket or re.match(r"^\d+\.\d+\.\d+\.\d+$", bucket):
        raise PushError(
            f"bucket {bucket!r} is not a valid S3 bucket name: 3-63 lowercase letters, digits, '.' or '-', "
            "starting and ending with a letter or digit, not an IP address"
        )


@dataclass(frozen=True)
class ObjectStore:
    """Where and as whom to reach the store (the inventory's object_store_* variables)."""

    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    ca_file: str | None = None

    def client(self) -> Minio:
        parsed = urllib.parse.urlsplit(self.endpoint_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise PushError(f"endpoint_url {self.endpoint_url!r} is not an http:// or https:// URL")
        http = urllib3.PoolManager(
            maxsize=16,
            cert_reqs="CERT_REQUIRED",
            ca_certs=self.ca_file or certifi.where(),
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        return Minio(
            parsed.netloc,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=parsed.scheme == "https",
            region=self.region,
            http_client=http,
        )


@dataclass
class PushResult:
    name: str
    version: str
    bucket: str
    changed: bool
    files: int
    total_bytes: int
    manifest: dict[str, Any]

    def summary(self) -> str:
        verb = "pushed" if self.changed else "already in the store, unchanged:"
        return f"{verb} {self.name} {self.version} to s3://{self.bucket}/{self.name}/{self.version}/ ({self.files} files, {self.total_bytes} bytes)"


def read_manifest(client: Minio, bucket: str, name: str, version: str) -> dict[str, Any] | None:
    key = f"{name}/{version}/{MANIFEST_OBJECT}"
    try:
        response = client.get_object(bucket, key)
    except S3Error as error:
        if error.code in ("NoSuchKey", "NoSuchObject"):
            return None
        raise PushError(f"s3://{bucket}/{key}: {error.code}: {error.message}") from error
    try:
        return json.loads(response.read())
    except ValueError as error:
        raise PushError(f"s3://{bucket}/{key}: not a JSON manifest ({error})") from error
    finally:
        response.close()
        response.release_conn()


def push_model(store: ObjectStore, bucket: str, directory: str | Path, name: str, version: str,
               parallel: int = 4) -> PushResult:
    """Upload ``directory`` as ``name``/``version`` into ``bucket`` (which must exist)."""
    directory = Path(directory)
    check_bucket_name(bucket)
    manifest = build_manifest(directory, name, version, parallel=parallel)
    client = store.client()
    try:
        if not client.bucket_exists(bucket):
            raise PushError(f"bucket {bucket!r} does not exist on {store.endpoint_url}; the store role creates tenant buckets")
    except S3Error as error:
        raise PushError(f"bucket {bucket!r}: {error.code}: {error.message}") from error
    existing = read_manifest(client, bucket, name, version)
    result = PushResult(name, version, bucket, False, len(manifest["files"]), manifest["total_bytes"], manifest)
    if existing is not None:
        if same_content(existing, manifest):
            result.manifest = existing
            return result
        raise PushError(
            f"{name} {version} already exists in s3://{bucket}/ with different files; versions are immutable, "
            "push this model under a new --version"
        )
    prefix = f"{name}/{version}/files/"

    def upload(entry: dict[str, Any]) -> None:
        try:
            client.fput_object(
                bucket, prefix + entry["path"], str(directory / entry["path"]),
                part_size=PART_SIZE, metadata={"x-amz-meta-sha256": entry["sha256"]},
            )
        except S3Error as error:
            raise PushError(f"file {entry['path']}: {error.code}: {error.message}") from error

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        list(pool.map(upload, manifest["files"]))
    body = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    try:
        client.put_object(bucket, f"{name}/{version}/{MANIFEST_OBJECT}", io.BytesIO(body), len(body),
                          content_type="application/json")
    except S3Error as error:
        raise PushError(f"manifest {name}/{version}: {error.code}: {error.message}") from error
    result.changed = True
    return result
