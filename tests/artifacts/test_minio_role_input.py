"""Bad input to the minio role fails in preflight, naming the field, before any host changes.

The role runs against localhost with only its preflight tag (checks on the controller), so
nothing on this machine is touched.
"""

from __future__ import annotations

import hashlib

import pytest
from test_store_role_input import run_preflight

ARTIFACT = b"#!/bin/sh\nexit 1\n"
GOOD = {
    "minio_root_user": "llmops-root",
    "minio_root_password": "root-password-123",
    "minio_tls_ca_dir": "/nonexistent/pki",
    "minio_server_artifact_sha256": hashlib.sha256(ARTIFACT).hexdigest(),
    "minio_pools": [{"hosts": "minio{1...4}.lab", "drives": "/srv/minio/disk{1...4}"}],
    "minio_node_name": "minio2.lab",
}


@pytest.fixture
def good(tmp_path):
    artifact = tmp_path / "minio"
    artifact.write_bytes(ARTIFACT)
    return {**GOOD, "minio_server_artifact_src": str(artifact)}


def test_valid_distributed_layout_passes_preflight(tmp_path, good):
    code, output = run_preflight(tmp_path, "minio", good)
    assert code == 0, output
    assert "root-password-123" not in output


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"minio_root_password": "short"}, "minio_root_user (at least 3 characters"),
        ({"minio_root_user": "ab"}, "minio_root_user (at least 3 characters"),
        ({"minio_server_artifact_sha256": "latest"}, 'minio_server_artifact_sha256 must be 64 lowercase hex digits'),
        ({"minio_server_artifact_url": "https://dl.min.io/server/minio/release/linux-amd64/minio"},
         "exactly one of minio_server_artifact_url"),
        ({"minio_server_artifact_src": "", "minio_server_artifact_url": "https://dl.min.io/server/minio/release/linux-amd64/minio"},
         "not a moving \"latest\" URL"),
        ({"minio_server_artifact_sha256": "0" * 64}, "minio_server_artifact_sha256: "),
        ({"minio_tls_ca_dir": ""}, "set both minio_tls_cert_src and minio_tls_key_src, or neither"),
        ({"minio_pools": [{"hosts": "minio{1...17}.lab", "drives": "/srv/minio/disk{1...2}"}]},
         "minio_pools[0]: 'https://minio{1...17}.lab:9000/srv/minio/disk{1...2}': 34 drives cannot be spread "
         "symmetrically over 17 hosts"),
        ({"minio_node_name": "minio9.lab"}, "minio_node_name: 'minio9.lab' is in no pool"),
        ({"minio_storage_class_standard": "EC:9"}, "minio_storage_class_standard: 'EC:9'; accepted values: '' "
                                                   "(MinIO's default) or EC:0..EC:8"),
    ],
)
def test_bad_minio_input_fails_naming_the_field(tmp_path, good, override, message):
    code, output = run_preflight(tmp_path, "minio", {**good, **override})
    assert code != 0
    assert message in " ".join(output.split()), output
    assert "root-password-123" not in output
