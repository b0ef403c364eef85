"""model_fetch against the real store: verified copies, corruption, eviction, tenant isolation.

The verifier pushes further versions from the controller with `llmops model push`, tampers with
objects as the admin through boto3 and runs the module on the node with the tenant's key.
"""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import boto3
import pytest
from botocore.config import Config
from testinfra.modules.ansible import AnsibleException

testinfra_hosts = ["model-fetch-node"]
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
CACHE = "/var/lib/llmops/models/tiny-llama"
SCENARIO = pathlib.Path(__file__).resolve().parents[1]


def secret(name):
    return (EPHEMERAL / name).read_text().split()[0]


@pytest.fixture(scope="module")
def store_address(host):
    store = host.get_host("ansible://model-fetch-store", ansible_inventory=host.backend.ansible_inventory)
    return store.check_output("hostname -I").split()[0]


def admin_s3(address):
    return boto3.client(
        "s3", endpoint_url=f"https://{address}:8333", region_name="us-east-1",
        aws_access_key_id=secret("s3-admin-access"), aws_secret_access_key=secret("s3-admin-secret"),
        verify=str(EPHEMERAL / "pki" / "ca.pem"), config=Config(s3={"addressing_style": "path"}),
    )


def push(address, version):
    model = EPHEMERAL / "models" / version
    subprocess.run([sys.executable, str(SCENARIO / "make_model.py"), str(model), version], check=True)
    env = dict(os.environ, LLMOPS_S3_ACCESS_KEY=secret("s3-admin-access"), LLMOPS_S3_SECRET_KEY=secret("s3-admin-secret"))
    subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "llmops"), "model", "push", str(model), "--name=tiny-llama",
         f"--version={version}", "--bucket=llmops-team-a", f"--endpoint-url=https://{address}:8333",
         f"--ca-file={EPHEMERAL / 'pki' / 'ca.pem'}"],
        check=True, env=env,
    )
    return model


def fetch(host, version, tenant="team-a", keep_versions=2):
    args = {
        "name": "tiny-llama", "version": version, "endpoint_url": "https://model-fetch-store:8333",
        "ca_file": "/etc/llmops/object-store-ca.pem", "bucket": "llmops-team-a",
        "access_key": secret(f"s3-{tenant}-access"), "secret_key": secret(f"s3-{tenant}-secret"),
        "keep_versions": keep_versions,
    }
    try:
        result = host.ansible("llmops.datacenter.model_fetch", json.dumps(args), check=False, become=True)
    except AnsibleException as error:
        result = {**error.result, "failed": True}
    # testinfra's ad-hoc result drops Ansible's failed flag; a successful fetch always returns its path.
    result.setdefault("failed", "path" not in result)
    return result


def cached(host):
    return sorted(host.file(CACHE).listdir())


def node_hashes(host, version):
    out = host.check_output(f"cd {CACHE}/{version} && find . -type f ! -name '.llmops-manifest.json' -exec sha256sum {{}} +")
    return {line.split()[1][2:]: line.split()[0] for line in out.splitlines()}


def local_hashes(version):
    directory = EPHEMERAL / "models" / version
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir() if p.is_file()}


def test_both_versions_are_verified_copies_of_what_was_pushed(host):
    assert cached(host) == ["v1", "v2"]
    for version in ("v1", "v2"):
        assert node_hashes(host, version) == local_hashes(version)


def test_fetching_again_changes_nothing(host):
    result = fetch(host, "v2")
    assert result.get("changed") is False and result["downloaded_bytes"] == 0


def test_another_tenants_key_is_refused_and_nothing_changes(host):
    result = fetch(host, "v2", tenant="team-b")
    assert result.get("failed") and "access denied" in result["msg"] and "llmops-team-a" in result["msg"]
    assert cached(host) == ["v1", "v2"]


def test_corrupted_object_fails_naming_the_file_and_keeps_the_cache(host, store_address):
    push(store_address, "v3")
    shard = "model-00003-of-00004.safetensors"
    s3 = admin_s3(store_address)
    key = f"tiny-llama/v3/files/{shard}"
    body = bytearray(s3.get_object(Bucket="llmops-team-a", Key=key)["Body"].read())
    body[4096] ^= 0xFF
    s3.put_object(Bucket="llmops-team-a", Key=key, Body=bytes(body))
    before = {v: node_hashes(host, v) for v in ("v1", "v2")}
    result = fetch(host, "v3")
    assert result.get("failed"), result
    assert f"file {shard}: sha256" in result["msg"] and "does not match the manifest" in result["msg"]
    assert cached(host) == ["v1", "v2"]
    assert {v: node_hashes(host, v) for v in ("v1", "v2")} == before


def test_a_new_version_evicts_the_oldest_beyond_the_cache_size(host, store_address):
    push(store_address, "v4")
    result = fetch(host, "v4", keep_versions=2)
    assert result["changed"] and result["evicted"] == [f"{CACHE}/v1"]
    assert cached(host) == ["v2", "v4"]
    assert node_hashes(host, "v4") == local_hashes("v4")
