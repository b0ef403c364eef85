"""Push with `llmops model push`, fetch with the collection's model_fetch logic, against a real SeaweedFS.

boto3 (a client nobody here wrote) reads and tampers with what the minio SDK wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import model_cache
from botocore.exceptions import ClientError
from conftest import TENANTS, boto3_client

from llmops.artifacts import ManifestError, ObjectStore, PushError, push_model
from llmops.cli import main as llmops_main

CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
    "intermediate_size": 1536, "num_attention_heads": 9, "num_hidden_layers": 30,
    "num_key_value_heads": 3, "vocab_size": 49152, "max_position_embeddings": 8192,
    "tie_word_embeddings": True, "head_dim": 64,
}
BUCKET = TENANTS["team-a"]


def make_model(directory: Path, seed: int, shards: int = 3, shard_bytes: int = 300_000) -> Path:
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(CONFIG))
    (directory / "tokenizer.json").write_text(json.dumps({"seed": seed}))
    (directory / "tokenizer").mkdir()
    (directory / "tokenizer" / "special_tokens_map.json").write_text("{}")
    for index in range(shards):
        data = bytes((seed * 31 + index + i) % 251 for i in range(shard_bytes))
        (directory / f"model-{index:05d}-of-{shards:05d}.safetensors").write_bytes(data)
    (directory / ".converted").write_text("stamp files are not part of a model")
    return directory


def admin_store(store) -> ObjectStore:
    ident = store.identities["admin"]
    return ObjectStore(store.endpoint_url, ident.access_key, ident.secret_key)


def reader(store, tenant: str = "team-a"):
    ident = store.identities[tenant]
    return model_cache.client_factory_for(store.endpoint_url, ident.access_key, ident.secret_key)


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def pushed(store, tmp_path, request):
    """A fresh model name per test, version v1 pushed to team-a's bucket."""
    name = f"m-{request.node.name.replace('_', '-')[:40]}"
    model = make_model(tmp_path / "model-v1", seed=1)
    result = push_model(admin_store(store), BUCKET, model, name, "v1")
    return name, model, result


def test_push_writes_files_then_a_manifest_with_sizes_hashes_and_architecture(store, pushed):
    name, model, result = pushed
    assert result.changed
    s3 = boto3_client(store, "team-a")
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{name}/v1/manifest.json")["Body"].read())
    assert manifest["schema"] == model_cache.MANIFEST_SCHEMA
    paths = [entry["path"] for entry in manifest["files"]]
    assert ".converted" not in paths and "tokenizer/special_tokens_map.json" in paths
    assert manifest["architecture"]["architectures"] == ["LlamaForCausalLM"]
    assert manifest["architecture"]["total_params"] > 100_000_000
    for entry in manifest["files"]:
        body = s3.get_object(Bucket=BUCKET, Key=f"{name}/v1/files/{entry['path']}")["Body"].read()
        assert body == (model / entry["path"]).read_bytes()
        assert len(body) == entry["size"]


def test_push_again_is_a_no_op_and_a_different_model_under_the_same_version_is_refused(store, pushed, tmp_path):
    name, model, _ = pushed
    again = push_model(admin_store(store), BUCKET, model, name, "v1")
    assert not again.changed
    other = make_model(tmp_path / "other", seed=2)
    with pytest.raises(PushError, match=r"already exists .* immutable"):
        push_model(admin_store(store), BUCKET, other, name, "v1")


def test_push_bad_input_names_the_problem(store, tmp_path):
    empty = tmp_path / "no-config"
    empty.mkdir()
    (empty / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ManifestError, match=r"config.json: missing"):
        push_model(admin_store(store), BUCKET, empty, "m", "v1")
    model = make_model(tmp_path / "m", seed=3)
    with pytest.raises(ManifestError, match=r"version '\.\./x' is not valid"):
        push_model(admin_store(store), BUCKET, model, "m", "../x")
    with pytest.raises(PushError, match=r"bucket 'no-such-bucket' does not exist"):
        push_model(admin_store(store), "no-such-bucket", model, "m", "v1")
    with pytest.raises(PushError, match=r"bucket 'Bad_Bucket' is not a valid S3 bucket name"):
        push_model(admin_store(store), "Bad_Bucket", model, "m", "v1")


def test_read_only_tenant_key_cannot_push(store, tmp_path):
    ident = store.identities["team-a"]
    model = make_model(tmp_path / "m", seed=4)
    with pytest.raises(PushError, match="AccessDenied"):
        push_model(ObjectStore(store.endpoint_url, ident.access_key, ident.secret_key), BUCKET, model, "ro", "v1")


def test_cli_push_reads_credentials_from_the_environment(store, tmp_path, monkeypatch, capsys):
    model = make_model(tmp_path / "m", seed=5)
    argv = ["model", "push", str(model), "--name", "cli-model", "--version", "v1", "--bucket", BUCKET,
            "--endpoint-url", store.endpoint_url, "--json"]
    monkeypatch.delenv("LLMOPS_S3_SECRET_KEY", raising=False)
    assert llmops_main(argv) == 2
    assert "LLMOPS_S3_SECRET_KEY" in capsys.readouterr().err
    monkeypatch.setenv("LLMOPS_S3_ACCESS_KEY", store.identities["admin"].access_key)
    monkeypatch.setenv("LLMOPS_S3_SECRET_KEY", store.identities["admin"].secret_key)
    assert llmops_main(argv) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert llmops_main(argv) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False


def test_fetch_verifies_every_file_then_second_run_changes_nothing(store, pushed, tmp_path):
    name, model, _ = pushed
    cache = tmp_path / "cache"
    dry = model_cache.fetch_model(reader(store), BUCKET, name, "v1", str(cache), check_mode=True)
    assert dry["changed"] and not (cache / name / "v1").exists()
    first = model_cache.fetch_model(reader(store), BUCKET, name, "v1", str(cache))
    assert first["changed"] and first["downloaded_bytes"] == first["manifest"]["total_bytes"]
    fetched = tree(cache / name / "v1")
    fetched.pop(model_cache.LOCAL_MANIFEST)
    expected = tree(model)
    expected.pop(".converted")
    assert fetched == expected
    second = model_cache.fetch_model(reader(store), BUCKET, name, "v1", str(cache), rehash=True)
    assert not second["changed"] and second["downloaded_bytes"] == 0


def test_fetch_resumes_a_partial_download_with_a_range_request(store, pushed, tmp_path):
    name, model, _ = pushed
    cache = tmp_path / "cache"
    shard = "model-00001-of-00003.safetensors"
    staging = cache / model_cache.STAGING / name / "v1"
    staging.mkdir(parents=True)
    (staging / f"{shard}.part").write_bytes((model / shard).read_bytes()[:100_000])
    result = model_cache.fetch_model(reader(store), BUCKET, name, "v1", str(cache))
    assert result["downloaded_bytes"] == result["manifest"]["total_bytes"] - 100_000
    assert (cache / name / "v1" / shard).read_bytes() == (model / shard).read_bytes()
    assert not staging.exists()


def test_tenant_key_cannot_list_or_read_another_tenants_models(store, pushed, tmp_path):
    name, _, _ = pushed
    team_b = boto3_client(store, "team-b")
    for call in (lambda: team_b.list_objects_v2(Bucket=BUCKET),
                 lambda: team_b.get_object(Bucket=BUCKET, Key=f"{name}/v1/manifest.json")):
        with pytest.raises(ClientError) as denied:
            call()
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(model_cache.FetchError, match=rf"access denied; the credentials need read access to bucket '{BUCKET}'"):
        model_cache.fetch_model(reader(store, "team-b"), BUCKET, name, "v1", str(tmp_path / "cache"))
    assert not (tmp_path / "cache" / name).exists()
    # Its own bucket it can list.
    assert team_b.list_objects_v2(Bucket=TENANTS["team-b"])["KeyCount"] >= 0


def test_corrupted_object_fails_naming_the_file_and_keeps_the_good_copy(store, pushed, tmp_path):
    name, _, _ = pushed
    cache = tmp_path / "cache"
    model_cache.fetch_model(reader(store), BUCKET, name, "v1", str(cache))
    good = tree(cache / name / "v1")
    v2 = make_model(tmp_path / "model-v2", seed=7)
    push_model(admin_store(store), BUCKET, v2, name, "v2")
    shard = "model-00002-of-00003.safetensors"
    tampered = bytearray((v2 / shard).read_bytes())
    tampered[1234] ^= 0xFF
    boto3_client(store, "admin").put_object(Bucket=BUCKET, Key=f"{name}/v2/files/{shard}", Body=bytes(tampered))
    with pytest.raises(model_cache.FetchError, match=rf"file {shard}: sha256 [0-9a-f]{{64}} .* does not match"):
        model_cache.fetch_model(reader(store), BUCKET, name, "v2", str(cache))
    assert not (cache / name / "v2").exists()
    assert tree(cache / name / "v1") == good
    assert not (cache / model_cache.STAGING / name / "v2" / f"{shard}.part").exists()


def test_manifest_naming_a_file_the_store_lacks_fails_naming_it(store, pushed, tmp_path):
    name, _, _ = pushed
    boto3_client(store, "admin").delete_object(Bucket=BUCKET, Key=f"{name}/v1/files/tokenizer.json")
    with pytest.raises(model_cache.FetchError, match=r"file tokenizer.json: listed in the manifest but missing from the store"):
        model_cache.fetch_model(reader(store), BUCKET, name, "v1", str(tmp_path / "cache"))
    assert not (tmp_path / "cache" / name / "v1").exists()


def test_unknown_version_and_bad_names_fail_before_touching_the_cache(store, pushed, tmp_path):
    name, _, _ = pushed
    cache = tmp_path / "cache"
    with pytest.raises(model_cache.FetchError, match=r"manifest s3://.*/v9/manifest.json not found"):
        model_cache.fetch_model(reader(store), BUCKET, name, "v9", str(cache))
    with pytest.raises(model_cache.FetchError, match=r"name '\.\./etc' is not valid"):
        model_cache.fetch_model(reader(store), BUCKET, "../etc", "v1", str(cache))
    assert not cache.exists()


def test_cache_keeps_the_configured_number_of_versions(store, pushed, tmp_path):
    name, _, _ = pushed
    for version, seed in (("v2", 11), ("v3", 12)):
        push_model(admin_store(store), BUCKET, make_model(tmp_path / version, seed=seed, shards=1), name, version)
    cache = tmp_path / "cache"
    for version in ("v1", "v2"):
        model_cache.fetch_model(reader(store), BUCKET, name, version, str(cache), keep_versions=2)
        os.utime(cache / name / version / model_cache.LOCAL_MANIFEST, (1_000_000 + int(version[1:]),) * 2)
    dry = model_cache.fetch_model(reader(store), BUCKET, name, "v3", str(cache), keep_versions=2, check_mode=True)
    assert dry["evicted"] == [str(cache / name / "v1")] and (cache / name / "v1").exists()
    result = model_cache.fetch_model(reader(store), BUCKET, name, "v3", str(cache), keep_versions=2)
    assert result["evicted"] == [str(cache / name / "v1")]
    assert sorted(os.listdir(cache / name)) == ["v2", "v3"]
