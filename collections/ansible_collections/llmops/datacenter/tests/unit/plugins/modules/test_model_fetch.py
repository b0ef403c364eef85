"""model_fetch's wrapper: bad input fails naming the field before anything is written.

Fetching from a real store (verify, resume, corruption, eviction, tenancy) is tested against a
live SeaweedFS in tests/artifacts and in the model_fetch molecule scenario.
"""

import socket

import pytest
from ansible_collections.llmops.datacenter.plugins.modules import model_fetch

STORE = {"bucket": "llmops-team-a", "access_key": "AKIA", "secret_key": "not-logged-secret"}


def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"name": "../etc"}, "name '../etc' is not valid"),
        ({"version": ""}, "version '' is not valid"),
        ({"bucket": "Team_A"}, "bucket 'Team_A' is not a valid S3 bucket name"),
        ({"endpoint_url": "store:8333"}, "endpoint_url 'store:8333' is not an http:// or https:// URL"),
        ({"keep_versions": 0}, "keep_versions must be at least 1"),
        ({"parallel": 0}, "parallel must be at least 1"),
    ],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_bad_input_fails_naming_the_field_and_writes_nothing(run_module, tmp_path, override, message, check_mode):
    args = {**STORE, "name": "smollm2", "version": "v1", "endpoint_url": "http://127.0.0.1:9",
            "cache_dir": str(tmp_path / "cache"), **override}
    result = run_module(model_fetch, args, check_mode=check_mode)
    assert result["failed"] and message in result["msg"]
    assert not (tmp_path / "cache").exists()
    assert "not-logged-secret" not in str(result)


def test_unreachable_store_is_named(run_module, tmp_path):
    port = closed_port()
    args = {**STORE, "name": "smollm2", "version": "v1", "endpoint_url": f"http://127.0.0.1:{port}",
            "cache_dir": str(tmp_path / "cache")}
    result = run_module(model_fetch, args)
    assert result["failed"] and f"cannot reach http://127.0.0.1:{port}" in result["msg"]
    assert not (tmp_path / "cache").exists()
