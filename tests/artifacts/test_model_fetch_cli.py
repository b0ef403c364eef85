"""`llmops model fetch` (the model server's init step on Kubernetes) against a real SeaweedFS.

The store is named by the environment, as a Secret mounted with envFrom names it in the pod.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TENANTS, boto3_client
from test_model_delivery import admin_store, make_model, tree

from llmops.artifacts import push_model
from llmops.cli import main as llmops_main

BUCKET = TENANTS["team-a"]
ROOT = Path(__file__).resolve().parents[2]
LOCAL_MANIFEST = ".llmops-manifest.json"


def store_environment(store, tenant: str = "team-a") -> dict[str, str]:
    ident = store.identities[tenant]
    return {
        "LLMOPS_S3_ENDPOINT_URL": store.endpoint_url,
        "LLMOPS_S3_BUCKET": BUCKET,
        "LLMOPS_S3_ACCESS_KEY": ident.access_key,
        "LLMOPS_S3_SECRET_KEY": ident.secret_key,
    }


def fetch(monkeypatch, capsys, environment: dict[str, str], *args: str) -> tuple[int, str, str]:
    for name in ("LLMOPS_S3_ENDPOINT_URL", "LLMOPS_S3_BUCKET", "LLMOPS_S3_ACCESS_KEY", "LLMOPS_S3_SECRET_KEY",
                 "LLMOPS_S3_REGION", "LLMOPS_S3_CA_FILE", "LLMOPS_S3_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code = llmops_main(["model", "fetch", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def pushed(store, tmp_path, request):
    name = f"cli-{request.node.name.replace('_', '-')[:40]}"
    model = make_model(tmp_path / "model-v1", seed=21)
    push_model(admin_store(store), BUCKET, model, name, "v1")
    return name, model


def expected_files(model: Path) -> dict[str, bytes]:
    files = tree(model)
    files.pop(".converted")
    return files


def test_fetch_verifies_every_file_and_a_second_run_downloads_nothing(store, pushed, tmp_path, monkeypatch, capsys):
    name, model = pushed
    cache = tmp_path / "cache"
    argv = ("--name", name, "--version", "v1", "--cache-dir", str(cache), "--json")
    code, out, err = fetch(monkeypatch, capsys, store_environment(store), *argv)
    assert code == 0, err
    first = json.loads(out)
    assert first["changed"] and first["downloaded_bytes"] == first["manifest"]["total_bytes"] > 0
    fetched = tree(cache / name / "v1")
    fetched.pop(LOCAL_MANIFEST)
    assert fetched == expected_files(model)
    inodes = {p: p.stat().st_ino for p in (cache / name / "v1").rglob("*") if p.is_file()}

    code, out, err = fetch(monkeypatch, capsys, store_environment(store), *argv)
    assert code == 0, err
    second = json.loads(out)
    assert not second["changed"] and second["downloaded_bytes"] == 0
    assert {p: p.stat().st_ino for p in (cache / name / "v1").rglob("*") if p.is_file()} == inodes


def test_a_cached_file_damaged_on_disk_is_fetched_again(store, pushed, tmp_path, monkeypatch, capsys):
    name, model = pushed
    cache = tmp_path / "cache"
    argv = ("--name", name, "--version", "v1", "--cache-dir", str(cache))
    assert fetch(monkeypatch, capsys, store_environment(store), *argv)[0] == 0
    shard = cache / name / "v1" / "model-00000-of-00003.safetensors"
    damaged = bytearray(shard.read_bytes())
    damaged[10] ^= 0xFF
    shard.write_bytes(bytes(damaged))
    # Same size, same stamp: only re-hashing notices, and the contract wants the sha256 checked.
    code, out, err = fetch(monkeypatch, capsys, store_environment(store), *argv)
    assert code == 0, err
    assert out.startswith("fetched ")
    assert shard.read_bytes() == (model / shard.name).read_bytes()


def test_corrupted_object_exits_non_zero_naming_the_file_and_keeps_the_old_copy(
        store, pushed, tmp_path, monkeypatch, capsys):
    name, _ = pushed
    cache = tmp_path / "cache"
    environment = store_environment(store)
    assert fetch(monkeypatch, capsys, environment, "--name", name, "--version", "v1", "--cache-dir", str(cache))[0] == 0
    good = tree(cache / name / "v1")
    v2 = make_model(tmp_path / "model-v2", seed=22)
    push_model(admin_store(store), BUCKET, v2, name, "v2")
    shard = "model-00001-of-00003.safetensors"
    tampered = bytearray((v2 / shard).read_bytes())
    tampered[4321] ^= 0xFF
    boto3_client(store, "admin").put_object(Bucket=BUCKET, Key=f"{name}/v2/files/{shard}", Body=bytes(tampered))

    code, _, err = fetch(monkeypatch, capsys, environment, "--name", name, "--version", "v2", "--cache-dir", str(cache))
    assert code == 1
    assert f"file {shard}: sha256" in err and "does not match the manifest" in err
    assert not (cache / name / "v2").exists()
    assert tree(cache / name / "v1") == good


def test_another_tenants_key_is_refused_and_nothing_is_written(store, pushed, tmp_path, monkeypatch, capsys):
    name, _ = pushed
    cache = tmp_path / "cache"
    code, _, err = fetch(monkeypatch, capsys, store_environment(store, "team-b"),
                         "--name", name, "--version", "v1", "--cache-dir", str(cache))
    assert code == 1
    assert f"access denied; the credentials need read access to bucket '{BUCKET}'" in err
    assert not (cache / name).exists()


def test_missing_settings_and_bad_names_exit_2_naming_them(store, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    code, _, err = fetch(monkeypatch, capsys, {"LLMOPS_S3_ACCESS_KEY": "x"},
                         "--name", "m", "--version", "v1", "--cache-dir", str(cache))
    assert code == 2
    assert "--bucket or LLMOPS_S3_BUCKET" in err and "--endpoint-url or LLMOPS_S3_ENDPOINT_URL" in err
    assert "LLMOPS_S3_SECRET_KEY" in err and "LLMOPS_S3_ACCESS_KEY" not in err
    code, _, err = fetch(monkeypatch, capsys, store_environment(store),
                         "--name", "../etc", "--version", "v1", "--cache-dir", str(cache))
    assert code == 2 and "--name '../etc' is not valid" in err
    code, _, err = fetch(monkeypatch, capsys, store_environment(store), "--bucket", "Bad_Bucket",
                         "--name", "m", "--version", "v1", "--cache-dir", str(cache))
    assert code == 2 and "bucket 'Bad_Bucket' is not a valid S3 bucket name" in err
    code, _, err = fetch(monkeypatch, capsys, store_environment(store),
                         "--name", "never-pushed", "--version", "v1", "--cache-dir", str(cache))
    assert code == 1 and "manifest s3://" in err and "not found" in err
    assert not cache.exists() or not any(cache.iterdir())


def test_fetch_runs_without_the_planner_or_s3_sdk_dependencies(store, pushed, tmp_path):
    """The serving image installs llmops without its dependencies: the fetch must need none of them."""
    name, model = pushed
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import importlib.abc, sys

        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path=None, target=None):
                if fullname.split(".")[0] in {{"pydantic", "ortools", "minio", "boto3", "botocore", "urllib3",
                                                "yaml", "kubernetes", "matplotlib", "ansible", "numpy"}}:
                    raise ImportError(f"{{fullname}} is not in the serving image")

        sys.meta_path.insert(0, Refuse())
        from llmops.cli import main
        sys.exit(main(["model", "fetch", "--name", {name!r}, "--version", "v1", "--cache-dir", {str(cache)!r}]))
    """)
    environment = {**os.environ, **store_environment(store)}
    completed = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                               timeout=120, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("fetched ") and "each sha256-checked" in completed.stdout
    fetched = tree(cache / name / "v1")
    fetched.pop(LOCAL_MANIFEST)
    assert fetched == expected_files(model)
