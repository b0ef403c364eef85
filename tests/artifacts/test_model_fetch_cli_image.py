"""`llmops model fetch` inside the serving image (scripts/build-serving-image.sh), against a real SeaweedFS.

The init container's exact command and environment, in the image the pods run; skipped where the
image has not been built (it takes ~10 minutes once).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import TENANTS, boto3_client
from test_model_delivery import admin_store, make_model, tree

from llmops.artifacts import push_model

ROOT = Path(__file__).resolve().parents[2]
IMAGE_FILE = ROOT / ".cache" / "serving-image" / "image.json"
BUCKET = TENANTS["team-a"]


def serving_image() -> str | None:
    if not IMAGE_FILE.is_file() or not shutil.which("podman"):
        return None
    image = json.loads(IMAGE_FILE.read_text())
    reference = f"localhost/{image['name']}:{image['tag']}"
    exists = subprocess.run(["podman", "image", "exists", reference], env=podman_environment(), check=False)
    return reference if exists.returncode == 0 else None


def podman_environment() -> dict[str, str]:
    # The project's podman settings (lowered ulimits: root here cannot raise them).
    return {**os.environ, "CONTAINERS_CONF": str(ROOT / "lab" / "containers.conf")}


IMAGE = serving_image()
pytestmark = pytest.mark.skipif(IMAGE is None, reason="serving image not built (scripts/build-serving-image.sh)")


def run_fetch(store, cache: Path, name: str, version: str) -> subprocess.CompletedProcess:
    ident = store.identities["team-a"]
    environment = {
        "LLMOPS_S3_ENDPOINT_URL": store.endpoint_url,
        "LLMOPS_S3_BUCKET": BUCKET,
        "LLMOPS_S3_ACCESS_KEY": ident.access_key,
        "LLMOPS_S3_SECRET_KEY": ident.secret_key,
    }
    argv = ["podman", "run", "--rm", "--network", "host", "--volume", f"{cache}:/var/lib/llmops/models:Z"]
    for key in environment:
        argv += ["--env", key]
    argv += [IMAGE, "llmops", "model", "fetch", "--name", name, "--version", version,
             "--cache-dir", "/var/lib/llmops/models", "--json"]
    return subprocess.run(argv, env={**podman_environment(), **environment}, capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_images_init_command_fetches_verifies_and_refuses_a_corrupted_object(store, tmp_path):
    name = "image-fetch"
    model = make_model(tmp_path / "v1", seed=31)
    push_model(admin_store(store), BUCKET, model, name, "v1")
    cache = tmp_path / "cache"
    cache.mkdir()

    first = run_fetch(store, cache, name, "v1")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["changed"] and result["downloaded_bytes"] == result["manifest"]["total_bytes"]
    fetched = tree(cache / name / "v1")
    fetched.pop(".llmops-manifest.json")
    expected = tree(model)
    expected.pop(".converted")
    assert fetched == expected

    second = run_fetch(store, cache, name, "v1")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["downloaded_bytes"] == 0

    v2 = make_model(tmp_path / "v2", seed=32)
    push_model(admin_store(store), BUCKET, v2, name, "v2")
    shard = "model-00002-of-00003.safetensors"
    damaged = bytearray((v2 / shard).read_bytes())
    damaged[99] ^= 0xFF
    boto3_client(store, "admin").put_object(Bucket=BUCKET, Key=f"{name}/v2/files/{shard}", Body=bytes(damaged))
    failed = run_fetch(store, cache, name, "v2")
    assert failed.returncode == 1
    assert f"file {shard}: sha256" in failed.stderr
    assert not (cache / name / "v2").exists()
    assert (cache / name / "v1" / "config.json").exists()
