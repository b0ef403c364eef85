"""Bad input to the seaweedfs and model_fetch roles fails in preflight, naming the field, before any change.

The roles run against localhost with only their preflight tag, so nothing on this machine is touched.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "seaweedfs_admin_access_key": "ADMINKEY",
    "seaweedfs_admin_secret_key": "admin-secret-123",
    "seaweedfs_tls_ca_dir": "/nonexistent/pki",
    "seaweedfs_tenants": {"team-a": {"bucket": "llmops-team-a", "read_access_key": "TEAMA",
                                     "read_secret_key": "team-a-secret"}},
}


def run_preflight(tmp_path, role, variables):
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "connection": "local",
                                     "roles": [{"role": f"llmops.datacenter.{role}"}]}]))
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_HOME=str(ROOT / ".ansible"),
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", str(playbook), "--tags", "preflight",
         "-e", f"@{extra}"],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


def test_valid_seaweedfs_input_passes_preflight(tmp_path):
    code, output = run_preflight(tmp_path, "seaweedfs", GOOD)
    assert code == 0, output


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"seaweedfs_admin_secret_key": ""}, "seaweedfs_admin_access_key and seaweedfs_admin_secret_key"),
        ({"seaweedfs_wheel_sha256": "latest"}, 'seaweedfs_wheel_sha256 "latest" must be 64 lowercase hex digits'),
        ({"seaweedfs_buckets": ["Team_Models"]}, 'seaweedfs_buckets: "Team_Models" is not a valid S3 bucket name'),
        ({"seaweedfs_tenants": {"team-b": {"bucket": "llmops-team-b", "read_access_key": "TEAMB"}}},
         "seaweedfs_tenants: team-b needs bucket, read_access_key and read_secret_key"),
        ({"seaweedfs_identities": [{"name": "pub", "access_key": "PUBKEY", "secret_key": "pub-secret-1",
                                    "permissions": {"llmops-team-a": ["Delete"]}}]},
         "seaweedfs_identities: pub needs"),
        ({"seaweedfs_identities": [{"name": "pub", "access_key": "PUBKEY", "secret_key": "pub-secret-1",
                                    "permissions": {"other-bucket": ["Read"]}}]},
         "seaweedfs_identities: pub needs"),
        ({"seaweedfs_tls_ca_dir": ""}, "set both seaweedfs_tls_cert_src and seaweedfs_tls_key_src, or neither"),
    ],
)
def test_bad_seaweedfs_input_fails_naming_the_field(tmp_path, override, message):
    code, output = run_preflight(tmp_path, "seaweedfs", {**GOOD, **override})
    assert code != 0
    assert message in output, output


def test_model_fetch_needs_a_known_tenant_with_a_read_key(tmp_path):
    variables = {
        "object_store_endpoint_url": "https://store:8333",
        "object_store_tenants": {"team-a": {"bucket": "llmops-team-a", "read_access_key": "TEAMA",
                                            "read_secret_key": "team-a-secret"}},
        "model_fetch_models": [{"name": "smollm2", "version": "v1", "tenant": "team-c"}],
    }
    code, output = run_preflight(tmp_path, "model_fetch", variables)
    assert code != 0
    assert 'model_fetch_models: smollm2 v1 names tenant "team-c"' in output, output
    assert "team-a-secret" not in output
