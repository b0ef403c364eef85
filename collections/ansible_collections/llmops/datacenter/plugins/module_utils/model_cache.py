# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Deliver one model version from an S3 store into a node's cache, every file sha256-verified.

Store layout (written by ``llmops model push``):
    s3://<bucket>/<name>/<version>/manifest.json
    s3://<bucket>/<name>/<version>/files/<path>
Node layout:
    <cache_dir>/<name>/<version>/<path>...        the model, ready for the serving engine
    <cache_dir>/<name>/<version>/.llmops-manifest.json   the manifest it was verified against
    <cache_dir>/.staging/<name>/<version>/        downloads in progress (kept for resuming)

A version appears in place in one rename, only after every file matched the manifest; a failed
fetch never touches the live copy. Runs on the target: standard library only.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import threading

from ansible_collections.llmops.datacenter.plugins.module_utils.s3_client import S3Client, S3Error

MANIFEST_SCHEMA = "llmops.model-manifest/v1"
MANIFEST_OBJECT = "manifest.json"
LOCAL_MANIFEST = ".llmops-manifest.json"
STAGING = ".staging"
CHUNK = 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FetchError(Exception):
    """A fetch that must fail; the message names the field, object or file at fault."""


def check_name(field: str, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value) or value in (".", ".."):
        raise FetchError(
            f"{field} {value!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )


def check_bucket(bucket: str) -> None:
    if not isinstance(bucket, str) or not _BUCKET.match(bucket) or ".." in bucket:
        raise FetchError(
            f"bucket {bucket!r} is not a valid S3 bucket name: 3-63 lowercase letters, digits, '.' or '-', "
            "starting and ending with a letter or digit"
        )


def _check_relative_path(path) -> None:
    parts = path.split("/") if isinstance(path, str) else []
    if not parts or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or path == LOCAL_MANIFEST:
        raise FetchError(f"manifest file path {path!r} is not a clean relative path")


def parse_manifest(raw: bytes, name: str, version: str) -> dict:
    """The manifest's data after checking every field a fetch relies on."""
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise FetchError(f"manifest for {name}/{version} is not JSON: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise FetchError(f"manifest for {name}/{version}: field 'schema' must be {MANIFEST_SCHEMA!r}")
    for field, want in (("name", name), ("version", version)):
        if manifest.get(field) != want:
            raise FetchError(f"manifest for {name}/{version}: field {field!r} is {manifest.get(field)!r}, expected {want!r}")
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        raise FetchError(f"manifest for {name}/{version}: field 'files' must be a non-empty list")
    seen = set()
    for index, entry in enumerate(files):
        if not isinstance(entry, dict):
            raise FetchError(f"manifest for {name}/{version}: files[{index}] is not a mapping")
        _check_relative_path(entry.get("path"))
        if not isinstance(entry.get("size"), int) or entry["size"] < 0:
            raise FetchError(f"manifest for {name}/{version}: files[{index}] ({entry['path']}) field 'size' must be an integer >= 0")
        if not isinstance(entry.get("sha256"), str) or not _SHA256.match(entry["sha256"]):
            raise FetchError(f"manifest for {name}/{version}: files[{index}] ({entry['path']}) field 'sha256' must be 64 hex digits")
        if entry["path"] in seen:
            raise FetchError(f"manifest for {name}/{version}: file {entry['path']} is listed twice")
        seen.add(entry["path"])
    return manifest


def sha256_of(path: str, prefix_bytes: int | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        remaining = prefix_bytes
        while remaining is None or remaining > 0:
            block = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest.hexdigest()


def _read_local_manifest(directory: str):
    try:
        with open(os.path.join(directory, LOCAL_MANIFEST), "rb") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def local_copy_matches(directory: str, manifest: dict, rehash: bool) -> bool:
    """The cached copy was verified against this very manifest and its files are still whole."""
    if _read_local_manifest(directory) != manifest:
        return False
    for entry in manifest["files"]:
        path = os.path.join(directory, entry["path"])
        try:
            if os.path.getsize(path) != entry["size"]:
                return False
        except OSError:
            return False
        if rehash and sha256_of(path) != entry["sha256"]:
            return False
    return True


class _Downloader:
    """Downloads manifest files into a staging directory with one S3 client per worker thread."""

    def __init__(self, client_factory, bucket, prefix, staging):
        self.client_factory, self.bucket, self.prefix, self.staging = client_factory, bucket, prefix, staging
        self.local = threading.local()
        self.downloaded_bytes = 0
        self.reused_files = 0
        self.lock = threading.Lock()
        self.clients = []

    def _client(self):
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = self.client_factory()
            with self.lock:
                self.clients.append(client)
        return client

    def close(self):
        for client in self.clients:
            client.close()

    def fetch(self, entry):
        """Bring one file into staging, verified; resume a partial download with a Range request."""
        final = os.path.join(self.staging, entry["path"])
        partial = final + ".part"
        os.makedirs(os.path.dirname(final), exist_ok=True)
        if os.path.exists(final):
            if os.path.getsize(final) == entry["size"] and sha256_of(final) == entry["sha256"]:
                with self.lock:
                    self.reused_files += 1
                return
            os.unlink(final)
        digest = hashlib.sha256()
        offset = 0
        if os.path.exists(partial):
            offset = os.path.getsize(partial)
            if offset > entry["size"]:
                os.unlink(partial)
                offset = 0
            else:
                with open(partial, "rb") as handle:
                    for block in iter(lambda: handle.read(CHUNK), b""):
                        digest.update(block)
        key = f"{self.prefix}files/{entry['path']}"
        if offset < entry["size"]:
            headers = {"range": f"bytes={offset}-"} if offset else None
            try:
                response = self._client().request("GET", self.bucket, key, headers=headers)
            except S3Error as error:
                if error.status == 404:
                    raise FetchError(f"file {entry['path']}: listed in the manifest but missing from the store ({error})") from error
                raise FetchError(f"file {entry['path']}: {error}") from error
            if offset and response.status != 206:
                # The store ignored the range: start over rather than append a second copy.
                offset = 0
                digest = hashlib.sha256()
            received = 0
            # One reused buffer: no per-block allocation on the hot path.
            buffer = bytearray(CHUNK)
            view = memoryview(buffer)
            with open(partial, "ab" if offset else "wb") as out:
                while True:
                    count = response.readinto(buffer)
                    if not count:
                        break
                    out.write(view[:count])
                    digest.update(view[:count])
                    received += count
                out.flush()
                os.fsync(out.fileno())
            with self.lock:
                self.downloaded_bytes += received
        size = os.path.getsize(partial) if os.path.exists(partial) else 0
        if entry["size"] == 0 and not os.path.exists(partial):
            open(partial, "wb").close()
        actual = digest.hexdigest()
        if size != entry["size"] or actual != entry["sha256"]:
            # A wrong file is never kept for resuming: the next attempt starts it afresh.
            os.unlink(partial)
            raise FetchError(
                f"file {entry['path']}: sha256 {actual} ({size} bytes) does not match the manifest's "
                f"{entry['sha256']} ({entry['size']} bytes); the cached copy was left untouched"
            )
        os.chmod(partial, 0o644)
        os.replace(partial, final)


def _versions_on_disk(model_dir: str):
    """(fetched-at, version) for every complete version of one model in the cache."""
    found = []
    try:
        names = os.listdir(model_dir)
    except FileNotFoundError:
        return found
    for version in names:
        marker = os.path.join(model_dir, version, LOCAL_MANIFEST)
        if os.path.isfile(marker):
            found.append((os.path.getmtime(marker), version))
    return sorted(found)


def versions_to_evict(model_dir: str, keep_versions: int, current: str):
    """Oldest versions first beyond ``keep_versions``; the version just fetched is always kept."""
    others = [version for _, version in _versions_on_disk(model_dir) if version != current]
    excess = len(others) + 1 - keep_versions
    return others[:max(0, excess)]


def _swap_into_place(staging: str, target: str) -> None:
    """Make ``staging`` the live ``target`` directory; a damaged previous copy is removed after."""
    if not os.path.exists(target):
        os.replace(staging, target)
        return
    retired = f"{target}.retired-{os.getpid()}"
    os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def fetch_model(client_factory, bucket, name, version, cache_dir, parallel=4, keep_versions=2,
                rehash=False, check_mode=False) -> dict:
    """Make ``cache_dir/name/version`` a verified copy of the stored model; returns the module result.

    ``client_factory()`` returns a fresh S3Client (one per worker thread).
    """
    check_name("name", name)
    check_name("version", version)
    check_bucket(bucket)
    if parallel < 1:
        raise FetchError("parallel must be at least 1")
    if keep_versions < 1:
        raise FetchError("keep_versions must be at least 1 (the version being fetched)")
    prefix = f"{name}/{version}/"
    client = client_factory()
    try:
        raw = client.get_bytes(bucket, prefix + MANIFEST_OBJECT)
    except S3Error as error:
        if error.code == "AccessDenied" or error.status == 403:
            raise FetchError(
                f"manifest s3://{bucket}/{prefix}{MANIFEST_OBJECT}: access denied; the credentials need read access to bucket {bucket!r} ({error})"
            ) from error
        if error.status == 404:
            raise FetchError(f"manifest s3://{bucket}/{prefix}{MANIFEST_OBJECT} not found: was {name} {version} pushed to bucket {bucket!r}? ({error})") from error
        raise FetchError(str(error)) from error
    finally:
        client.close()
    manifest = parse_manifest(raw, name, version)
    model_dir = os.path.join(cache_dir, name)
    target = os.path.join(model_dir, version)
    total = sum(entry["size"] for entry in manifest["files"])
    summary = {"name": name, "version": version, "files": len(manifest["files"]), "total_bytes": total}
    result = {
        "path": target,
        "manifest": {**summary, "architecture": manifest.get("architecture", {})},
        "downloaded_bytes": 0,
        "reused_files": 0,
        "evicted": [],
    }
    up_to_date = local_copy_matches(target, manifest, rehash)
    before = _read_local_manifest(target)
    result["diff"] = {
        "before": {"version": version, "present": before is not None, "matches_manifest": up_to_date},
        "after": {"version": version, "present": True, "matches_manifest": True, "files": summary["files"]},
    }
    result["changed"] = not up_to_date
    if not up_to_date and not check_mode:
        staging = os.path.join(cache_dir, STAGING, name, version)
        os.makedirs(staging, exist_ok=True)
        downloader = _Downloader(client_factory, bucket, prefix, staging)
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
                futures = [pool.submit(downloader.fetch, entry) for entry in manifest["files"]]
                errors = [f.exception() for f in futures if f.exception() is not None]
        finally:
            downloader.close()
        if errors:
            first = errors[0]
            raise first if isinstance(first, FetchError) else FetchError(f"{name} {version}: {first}")
        with open(os.path.join(staging, LOCAL_MANIFEST), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.makedirs(model_dir, exist_ok=True)
        _swap_into_place(staging, target)
        os.chmod(target, 0o755)
        result["downloaded_bytes"] = downloader.downloaded_bytes
        result["reused_files"] = downloader.reused_files
    evict = versions_to_evict(model_dir, keep_versions, version)
    result["evicted"] = [os.path.join(model_dir, v) for v in evict]
    if evict:
        result["changed"] = True
        if not check_mode:
            for old in evict:
                shutil.rmtree(os.path.join(model_dir, old))
    return result


def client_factory_for(endpoint_url, access_key, secret_key, region="us-east-1", ca_file=None,
                       validate_certs=True, timeout=60.0):
    def make():
        return S3Client(endpoint_url, access_key, secret_key, region, ca_file, validate_certs, timeout)

    return make
