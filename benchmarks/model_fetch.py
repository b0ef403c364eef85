"""Model delivery throughput against a real SeaweedFS on loopback (a benchmark, not a test).

Generates a model directory (config.json plus many safetensors-sized shards of random bytes),
pushes it with `llmops model push`'s code (minio SDK), fetches it with the collection's
model_fetch logic (parallel, every byte hashed against the manifest, atomic move into the cache),
and compares with two baselines over the same files:
  - cp: a local copy of the directory (the disk's own ceiling);
  - boto3: one download of every file with boto3's transfer manager, no verification (its files
    may still sit in the page cache when it returns), and the same followed by an fsync of
    each file (as durable as model_fetch's files are before they are moved into place).
Goal: fetch+verify at least 70% of the raw boto3 throughput.

    source scripts/env.sh
    python benchmarks/model_fetch.py --size-gib 2 --shards 16
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "artifacts"))
sys.path.insert(0, str(ROOT / "collections"))

import boto3  # noqa: E402
from ansible_collections.llmops.datacenter.plugins.module_utils import model_cache  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.config import Config  # noqa: E402
from seaweed import REGION, Identity, SeaweedS3, wait_writable  # noqa: E402

from llmops.artifacts import ObjectStore, push_model  # noqa: E402

BUCKET = "llmops-bench"
CONFIG = ROOT / "inventories/lab/group_vars/all/models/smollm2-135m-instruct/config.json"


def make_model(directory: Path, total_bytes: int, shards: int) -> None:
    directory.mkdir(parents=True)
    shutil.copy(CONFIG, directory / "config.json")
    per_shard = total_bytes // shards
    block = 8 * 1024 * 1024
    for index in range(shards):
        with (directory / f"model-{index + 1:05d}-of-{shards:05d}.safetensors").open("wb") as out:
            left = per_shard
            while left:
                out.write(os.urandom(min(block, left)))
                left -= min(block, left)


def drop_page_cache_hint(path: Path) -> None:
    """Sync so each phase starts without the previous one's dirty pages (the page cache stays)."""
    subprocess.run(["sync"], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=2.0, help="model size in GiB (default 2)")
    parser.add_argument("--shards", type=int, default=16, help="number of weight files (default 16)")
    parser.add_argument("--parallel", type=int, default=4, help="model_fetch and push workers (default 4)")
    parser.add_argument("--workdir", help="scratch directory (default: a temporary one, removed after)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="llmops-fetch-bench-"))
    total = int(args.size_gib * 1024**3)
    admin = Identity("admin", secrets.token_hex(10).upper(), secrets.token_urlsafe(24), ["Admin", "Read", "List", "Write"])
    reader = Identity("reader", secrets.token_hex(10).upper(), secrets.token_urlsafe(24), [f"Read:{BUCKET}", f"List:{BUCKET}"])
    server = SeaweedS3(work / "store", {"admin": admin, "reader": reader})
    rows = []
    started = time.monotonic()
    try:
        model = work / "model"
        make_model(model, total, args.shards)
        size = sum(p.stat().st_size for p in model.iterdir())
        server.start()
        s3 = boto3.client("s3", endpoint_url=server.endpoint_url, region_name=REGION,
                          aws_access_key_id=admin.access_key, aws_secret_access_key=admin.secret_key,
                          config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))
        s3.create_bucket(Bucket=BUCKET)
        wait_writable(s3, BUCKET)

        def timed(name, action):
            drop_page_cache_hint(work)
            t0 = time.monotonic()
            action()
            seconds = time.monotonic() - t0
            rows.append((name, seconds, size / seconds / 1e6))

        store = ObjectStore(server.endpoint_url, admin.access_key, admin.secret_key)
        timed("push (hash + upload, minio SDK)", lambda: push_model(store, BUCKET, model, "bench", "v1", parallel=args.parallel))
        factory = model_cache.client_factory_for(server.endpoint_url, reader.access_key, reader.secret_key)
        cache = work / "cache"
        timed("model_fetch (download + sha256 + atomic move)",
              lambda: model_cache.fetch_model(factory, BUCKET, "bench", "v1", str(cache), parallel=args.parallel))
        fetched = cache / "bench" / "v1"
        timed("re-verify cached copy (sha256 only)", lambda: model_cache.local_copy_matches(
            str(fetched), json.loads((fetched / model_cache.LOCAL_MANIFEST).read_text()), rehash=True))
        timed("baseline: cp -r", lambda: subprocess.run(["cp", "-r", str(model), str(work / "cp-copy")], check=True))
        raw = work / "boto3"
        raw.mkdir()
        transfer = TransferConfig(max_concurrency=args.parallel)

        def boto3_download():
            for path in sorted(model.iterdir()):
                s3.download_file(BUCKET, f"bench/v1/files/{path.name}", str(raw / path.name), Config=transfer)

        timed("baseline: boto3 download, no verification", boto3_download)
        durable = work / "boto3-fsync"
        durable.mkdir()

        def boto3_download_durable():
            # The same download made as durable as model_fetch makes its files: fsync each one.
            for path in sorted(model.iterdir()):
                target = durable / path.name
                s3.download_file(BUCKET, f"bench/v1/files/{path.name}", str(target), Config=transfer)
                with target.open("rb") as handle:
                    os.fsync(handle.fileno())

        timed("baseline: boto3 download + fsync, no verification", boto3_download_durable)
    finally:
        server.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    by_name = {name: rate for name, _, rate in rows}
    ours = by_name["model_fetch (download + sha256 + atomic move)"]
    boto = by_name["baseline: boto3 download, no verification"]
    boto_durable = by_name["baseline: boto3 download + fsync, no verification"]
    print(f"\nmodel: {size / 1024**3:.2f} GiB in {args.shards} shards + config.json; parallel={args.parallel}; "
          f"SeaweedFS {server.endpoint_url} (loopback)\n")
    print(f"{'phase':48} {'seconds':>8} {'MB/s':>8}")
    print(f"{'-' * 48} {'-' * 8} {'-' * 8}")
    for name, seconds, rate in rows:
        print(f"{name:48} {seconds:8.1f} {rate:8.1f}")
    ratio = ours / boto
    verdict = "meets" if ratio >= 0.7 else "misses"
    print(f"\nfetch+verify / raw boto3 = {ratio:.0%} (goal >= 70%: {verdict}); "
          f"/ boto3 + fsync = {ours / boto_durable:.0%}; total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
